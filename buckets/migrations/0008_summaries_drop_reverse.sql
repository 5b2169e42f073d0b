-- Back to thinger_bucket_write as 0005_bucket_clock.sql made it.
DROP FUNCTION thinger_bucket_summaries_drop(bigint, bigint);

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
