-- The catalog of database connections (seed 004): one row per remote table, its columns and their
-- fingerprint, and (for data refreshes) the cached version and its figures.
CREATE TABLE "autoloader"."connection_tables" (
	"connection_id" text NOT NULL,
	"schema_name" text NOT NULL,
	"table_name" text NOT NULL,
	"columns" jsonb NOT NULL,
	"column_fingerprint" text NOT NULL,
	"cached_version" text,
	"rows_cached" bigint,
	"bytes_cached" bigint,
	"last_synced_at" timestamp with time zone,
	"discovered_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "connection_tables_connection_id_schema_name_table_name_pk" PRIMARY KEY("connection_id","schema_name","table_name")
);
--> statement-breakpoint
ALTER TABLE "autoloader"."connection_tables" ADD CONSTRAINT "connection_tables_connection_id_connections_id_fk" FOREIGN KEY ("connection_id") REFERENCES "autoloader"."connections"("id") ON DELETE cascade ON UPDATE no action;