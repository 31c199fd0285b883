-- Steps name their memory figures as the design does; memory_kind says what they measure.
ALTER TABLE steps RENAME COLUMN memory_before_bytes TO gpu_mem_used_before;
ALTER TABLE steps RENAME COLUMN memory_after_bytes TO gpu_mem_used_after;
ALTER TABLE steps RENAME COLUMN memory_peak_bytes TO peak_gpu_mem_used;
