-- Records written with a time of their own drop the summaries they change (buckets.summaries):
-- thinger_bucket_write, as in 0005_bucket_clock.sql, first calls thinger_bucket_summaries_drop
-- when the oldest of them is older than 60 s (summaries.FRESH_MS), before it writes them, so that
-- a writer takes the bucket's mark before its records, as a delete does.

-- Drop the summaries of p_bucket from the slot (summaries.SLOT_MS, 5 minutes) of p_ts on and
-- lower the mark's "until" to that slot (not below "since"), holding the mark's row until the
-- transaction ends: a run summarizing the bucket waits for it, or it for the run.
CREATE FUNCTION thinger_bucket_summaries_drop(p_bucket bigint, p_ts bigint) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    mark_since bigint;
    mark_until bigint;
    low bigint;
BEGIN
    SELECT since, until INTO mark_since, mark_until
    FROM buckets_bucketsummarymark WHERE bucket_id = p_bucket FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    low := GREATEST(mark_since, p_ts - ((p_ts % 300000) + 300000) % 300000);
    IF low < mark_until THEN
        DELETE FROM buckets_bucketsummary WHERE bucket_id = p_bucket AND slot >= low;
        UPDATE buckets_bucketsummarymark SET until = low WHERE bucket_id = p_bucket;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION thinger_bucket_write(
    p_bucket bigint, p_device text, p_explicit jsonb, p_server jsonb, p_now bigint
) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    pending jsonb := p_server;
    first bigint;
BEGIN
    IF p_explicit IS NOT NULL THEN
        -- The pairs come in ascending order of ts: the first is the oldest.
        IF (p_explicit->0->>0)::bigint < p_now - 60000 THEN
            PERFORM thinger_bucket_summaries_drop(p_bucket, (p_explicit->0->>0)::bigint);
        END IF;
        INSERT INTO buckets_bucketrecord (bucket_id, ts, value, device)
        SELECT p_bucket, (r->>0)::bigint, NULLIF(r->1, 'null'), p_device
        FROM jsonb_array_elements(p_explicit) AS r
        ON CONFLICT (bucket_id, ts) DO UPDATE SET value = excluded.value, device = excluded.device;
    END IF;
    WHILE jsonb_array_length(pending) > 0 LOOP
        first := thinger_bucket_claim(p_bucket, p_now, jsonb_array_length(pending));
        WITH written AS (
            INSERT INTO buckets_bucketrecord (bucket_id, ts, value, device)
            SELECT p_bucket, first + e.i - 1, NULLIF(e.value, 'null'), p_device
            FROM jsonb_array_elements(pending) WITH ORDINALITY AS e(value, i)
            ON CONFLICT (bucket_id, ts) DO NOTHING
            RETURNING ts
        )
        SELECT COALESCE(jsonb_agg(e.value ORDER BY e.i), '[]')
        FROM jsonb_array_elements(pending) WITH ORDINALITY AS e(value, i)
        WHERE first + e.i - 1 NOT IN (SELECT ts FROM written)
        INTO pending;
    END LOOP;
END
$$;
