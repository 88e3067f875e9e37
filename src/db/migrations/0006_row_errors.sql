CREATE TABLE "autoloader"."rejected_rows" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ingestion_id" text NOT NULL,
	"file_id" bigint NOT NULL,
	"file_path" text NOT NULL,
	"run_id" text NOT NULL,
	"line" bigint NOT NULL,
	"error" text NOT NULL,
	"raw" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "autoloader"."processed_files" ADD COLUMN "error_permanent" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "autoloader"."processed_files" ADD COLUMN "load_attempts" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "autoloader"."processed_files" ADD COLUMN "rows_rejected" bigint;--> statement-breakpoint
ALTER TABLE "autoloader"."runs" ADD COLUMN "rows_rejected" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "autoloader"."rejected_rows" ADD CONSTRAINT "rejected_rows_ingestion_id_ingestions_id_fk" FOREIGN KEY ("ingestion_id") REFERENCES "autoloader"."ingestions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "autoloader"."rejected_rows" ADD CONSTRAINT "rejected_rows_file_id_processed_files_id_fk" FOREIGN KEY ("file_id") REFERENCES "autoloader"."processed_files"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "rejected_rows_file_idx" ON "autoloader"."rejected_rows" USING btree ("file_id");--> statement-breakpoint
CREATE INDEX "rejected_rows_ingestion_idx" ON "autoloader"."rejected_rows" USING btree ("ingestion_id","id");--> statement-breakpoint
-- Failures recorded before the distinction: data errors are the file's own, permanent for its version.
UPDATE "autoloader"."processed_files" SET "error_permanent" = true
WHERE "status" = 'FAILED' AND ("error_type" IN ('FileDataError', 'ConvertError', 'ReconciliationError', 'DecompressionError')
   OR "error_type" ~ '^PostgresError:(22|23|42|54)');
