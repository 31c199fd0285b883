-- A new job (its job_queued event) is also announced on the channel dreamforge_queued (payload: the
-- job id), so that workers on other machines claiming from the database queue stop waiting for
-- their next look at once.
CREATE OR REPLACE FUNCTION announce_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dreamforge_events', NEW.job_id);
  IF NEW.type = 'job_queued' THEN
    PERFORM pg_notify('dreamforge_queued', NEW.job_id);
  END IF;
  RETURN NULL;
END
$$;
