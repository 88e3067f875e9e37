CREATE TABLE "autoloader"."audit_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"subject" text NOT NULL,
	"action" text NOT NULL,
	"ingestion_id" text,
	"operation_id" text,
	"dry_run" boolean DEFAULT false NOT NULL,
	"impact" jsonb,
	"result" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "autoloader"."operations" (
	"id" text PRIMARY KEY NOT NULL,
	"ingestion_id" text NOT NULL,
	"tenant_id" text NOT NULL,
	"type" text NOT NULL,
	"strategy" text DEFAULT 'drop' NOT NULL,
	"status" text NOT NULL,
	"requested_by" text NOT NULL,
	"auto_run" boolean NOT NULL,
	"run_id" text,
	"workflow_id" text NOT NULL,
	"steps" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"impact" jsonb NOT NULL,
	"warnings" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"notes" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "autoloader"."pending_deletions" (
	"id" text PRIMARY KEY NOT NULL,
	"ingestion_id" text,
	"operation_id" text,
	"tenant_id" text NOT NULL,
	"schema_name" text NOT NULL,
	"table_name" text NOT NULL,
	"due_at" timestamp with time zone NOT NULL,
	"executed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
DROP INDEX "autoloader"."processed_files_ingestion_path_idx";--> statement-breakpoint
ALTER TABLE "autoloader"."processed_files" ADD COLUMN "scope" text DEFAULT 'live' NOT NULL;--> statement-breakpoint
ALTER TABLE "autoloader"."operations" ADD CONSTRAINT "operations_ingestion_id_ingestions_id_fk" FOREIGN KEY ("ingestion_id") REFERENCES "autoloader"."ingestions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_events_tenant_created_idx" ON "autoloader"."audit_events" USING btree ("tenant_id","created_at");--> statement-breakpoint
CREATE INDEX "audit_events_subject_action_idx" ON "autoloader"."audit_events" USING btree ("subject","action","created_at");--> statement-breakpoint
CREATE INDEX "operations_ingestion_created_idx" ON "autoloader"."operations" USING btree ("ingestion_id","created_at");--> statement-breakpoint
CREATE INDEX "pending_deletions_due_idx" ON "autoloader"."pending_deletions" USING btree ("due_at");--> statement-breakpoint
CREATE UNIQUE INDEX "processed_files_ingestion_scope_path_idx" ON "autoloader"."processed_files" USING btree ("ingestion_id","scope","file_path");