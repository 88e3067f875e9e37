ALTER TABLE "autoloader"."operations" ALTER COLUMN "ingestion_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "autoloader"."operations" ADD COLUMN "connection_id" text;--> statement-breakpoint
ALTER TABLE "autoloader"."operations" ADD COLUMN "result" jsonb;--> statement-breakpoint
ALTER TABLE "autoloader"."operations" ADD CONSTRAINT "operations_connection_id_connections_id_fk" FOREIGN KEY ("connection_id") REFERENCES "autoloader"."connections"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "operations_connection_created_idx" ON "autoloader"."operations" USING btree ("connection_id","created_at");