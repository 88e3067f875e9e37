CREATE SCHEMA "autoloader";
--> statement-breakpoint
CREATE TABLE "autoloader"."api_tokens" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"name" text NOT NULL,
	"token_hash" text NOT NULL,
	"subject" text NOT NULL,
	"permissions" text[] DEFAULT '{}'::text[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "autoloader"."connections" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"config" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "autoloader"."ingestions" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"name" text NOT NULL,
	"connection_id" text NOT NULL,
	"source" jsonb NOT NULL,
	"destination_schema" text NOT NULL,
	"destination_table" text NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "autoloader"."processed_files" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ingestion_id" text NOT NULL,
	"run_id" text,
	"file_path" text NOT NULL,
	"file_size_bytes" bigint NOT NULL,
	"file_modified_at" timestamp with time zone,
	"file_etag" text,
	"status" text NOT NULL,
	"claimed_by" text,
	"discovered_at" timestamp with time zone DEFAULT now() NOT NULL,
	"processing_started_at" timestamp with time zone,
	"processed_at" timestamp with time zone,
	"records_ingested" bigint,
	"bytes_read" bigint,
	"processing_duration_ms" bigint,
	"error_message" text,
	"error_type" text,
	"retry_count" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "autoloader"."runs" (
	"id" text PRIMARY KEY NOT NULL,
	"ingestion_id" text NOT NULL,
	"status" text NOT NULL,
	"trigger" text NOT NULL,
	"workflow_id" text NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"files_discovered" integer DEFAULT 0 NOT NULL,
	"files_processed" integer DEFAULT 0 NOT NULL,
	"files_failed" integer DEFAULT 0 NOT NULL,
	"files_skipped" integer DEFAULT 0 NOT NULL,
	"records_written" bigint DEFAULT 0 NOT NULL,
	"bytes_read" bigint DEFAULT 0 NOT NULL,
	"duration_ms" bigint,
	"discovery_cursor" text,
	"discovery_done" boolean DEFAULT false NOT NULL,
	"error" text
);
--> statement-breakpoint
CREATE TABLE "autoloader"."tenants" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "autoloader"."api_tokens" ADD CONSTRAINT "api_tokens_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "autoloader"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "autoloader"."connections" ADD CONSTRAINT "connections_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "autoloader"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "autoloader"."ingestions" ADD CONSTRAINT "ingestions_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "autoloader"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "autoloader"."ingestions" ADD CONSTRAINT "ingestions_connection_id_connections_id_fk" FOREIGN KEY ("connection_id") REFERENCES "autoloader"."connections"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "autoloader"."processed_files" ADD CONSTRAINT "processed_files_ingestion_id_ingestions_id_fk" FOREIGN KEY ("ingestion_id") REFERENCES "autoloader"."ingestions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "autoloader"."runs" ADD CONSTRAINT "runs_ingestion_id_ingestions_id_fk" FOREIGN KEY ("ingestion_id") REFERENCES "autoloader"."ingestions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_tokens_token_hash_idx" ON "autoloader"."api_tokens" USING btree ("token_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "connections_tenant_name_idx" ON "autoloader"."connections" USING btree ("tenant_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "ingestions_tenant_name_idx" ON "autoloader"."ingestions" USING btree ("tenant_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "ingestions_destination_idx" ON "autoloader"."ingestions" USING btree ("destination_schema","destination_table");--> statement-breakpoint
CREATE UNIQUE INDEX "processed_files_ingestion_path_idx" ON "autoloader"."processed_files" USING btree ("ingestion_id","file_path");--> statement-breakpoint
CREATE INDEX "idx_processed_files_ingestion_status" ON "autoloader"."processed_files" USING btree ("ingestion_id","status");--> statement-breakpoint
CREATE INDEX "idx_processed_files_run" ON "autoloader"."processed_files" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "idx_processed_files_status_date" ON "autoloader"."processed_files" USING btree ("status","processed_at");--> statement-breakpoint
CREATE INDEX "runs_ingestion_started_idx" ON "autoloader"."runs" USING btree ("ingestion_id","started_at");