-- No query filters processed_files on (status, processed_at) across ingestions: the index cost one more
-- index write on every file state change and answered nothing.
DROP INDEX "autoloader"."idx_processed_files_status_date";