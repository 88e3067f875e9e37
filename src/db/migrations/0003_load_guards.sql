-- Fails the statement it is called from: a one-statement load (claim, delete, insert) whose
-- inserted rows differ from the records counted in the file must not commit.
CREATE FUNCTION "autoloader"."reconcile"(counted bigint, loaded bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF counted IS DISTINCT FROM loaded THEN
    RAISE EXCEPTION 'the file has % records but % were loaded; the file was not loaded', counted, loaded
      USING ERRCODE = 'P0001';
  END IF;
  RETURN true;
END $$;
