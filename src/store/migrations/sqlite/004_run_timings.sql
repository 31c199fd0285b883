-- Time estimates read the recent successful runs of one model: steps by status and end time, jobs by model.
CREATE INDEX steps_by_status_and_finish ON steps (status, finished_ms);
CREATE INDEX jobs_by_model ON jobs (json_extract(spec, '$.model_id'));
