-- Every appended event announces its job on the channel dreamforge_events (payload: the job id),
-- so API instances learn of a worker's progress at once. PostgreSQL delivers a notification when
-- the inserting transaction commits, and folds duplicates within one transaction: a listener never
-- reads ahead of the data, and a batch of events for one job announces it once.
CREATE FUNCTION announce_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dreamforge_events', NEW.job_id);
  RETURN NULL;
END
$$;

CREATE TRIGGER events_announce AFTER INSERT ON events
  FOR EACH ROW EXECUTE FUNCTION announce_event();
