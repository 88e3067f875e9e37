-- The contract's operation statuses: "success", not "succeeded" (audit results mirror them).
UPDATE "autoloader"."operations" SET "status" = 'success' WHERE "status" = 'succeeded';
--> statement-breakpoint
UPDATE "autoloader"."audit_events" SET "result" = 'success' WHERE "result" = 'succeeded';
