-- ComfyUI's /view finds an image another machine saved by its output file name.
CREATE INDEX artifacts_by_output ON artifacts (json_extract(metadata, '$.filename'));
