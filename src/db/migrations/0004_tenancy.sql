CREATE TABLE "autoloader"."owned_tables" (
	"schema_name" text NOT NULL,
	"table_name" text NOT NULL,
	"tenant_id" text NOT NULL,
	"ingestion_id" text,
	"connection_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "owned_tables_schema_name_table_name_pk" PRIMARY KEY("schema_name","table_name")
);
--> statement-breakpoint
CREATE TABLE "autoloader"."secrets" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"name" text NOT NULL,
	"sealed" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "autoloader"."api_tokens" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "autoloader"."tenants" ADD COLUMN "policy" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "autoloader"."secrets" ADD CONSTRAINT "secrets_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "autoloader"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "owned_tables_tenant_idx" ON "autoloader"."owned_tables" USING btree ("tenant_id");--> statement-breakpoint
CREATE UNIQUE INDEX "secrets_tenant_name_idx" ON "autoloader"."secrets" USING btree ("tenant_id","name");--> statement-breakpoint
-- Tables of the ingestions that exist now are theirs: ownership starts with what is already loaded.
INSERT INTO "autoloader"."owned_tables" ("schema_name", "table_name", "tenant_id", "ingestion_id")
SELECT "destination_schema", "destination_table", "tenant_id", "id" FROM "autoloader"."ingestions"
ON CONFLICT DO NOTHING;
