-- A lane's claim takes the run's queued files in id order, a status at a time: on (run_id) alone each
-- claim read and sorted every file of the run, so a run of 100,000 small files spent 13 ms a claim by
-- its end (65 s in all). Status changes were never HOT (status is in idx_processed_files_ingestion_status),
-- so the wider key adds no index writes.
DROP INDEX "autoloader"."idx_processed_files_run";--> statement-breakpoint
CREATE INDEX "idx_processed_files_run" ON "autoloader"."processed_files" USING btree ("run_id","status","id");