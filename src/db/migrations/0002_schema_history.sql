CREATE TABLE "autoloader"."schema_versions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ingestion_id" text NOT NULL,
	"version" integer NOT NULL,
	"fingerprint" text NOT NULL,
	"columns" jsonb NOT NULL,
	"first_file" text NOT NULL,
	"run_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "autoloader"."processed_files" ADD COLUMN "schema_version" integer;--> statement-breakpoint
ALTER TABLE "autoloader"."schema_versions" ADD CONSTRAINT "schema_versions_ingestion_id_ingestions_id_fk" FOREIGN KEY ("ingestion_id") REFERENCES "autoloader"."ingestions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "schema_versions_ingestion_version_idx" ON "autoloader"."schema_versions" USING btree ("ingestion_id","version");--> statement-breakpoint
CREATE UNIQUE INDEX "schema_versions_ingestion_fingerprint_idx" ON "autoloader"."schema_versions" USING btree ("ingestion_id","fingerprint");