-- A deletion the database refuses (something depends on the old version, its lock is not granted)
-- is attempted a bounded number of times; the attempts, the last error and when it was given up are
-- kept on the row for GET /pending-deletions.
ALTER TABLE "autoloader"."pending_deletions" ADD COLUMN "attempts" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "autoloader"."pending_deletions" ADD COLUMN "last_error" text;--> statement-breakpoint
ALTER TABLE "autoloader"."pending_deletions" ADD COLUMN "failed_at" timestamp with time zone;
