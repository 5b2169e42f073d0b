DROP FUNCTION thinger_bucket_write(bigint, text, jsonb, jsonb, bigint);
DROP FUNCTION thinger_bucket_claim(bigint, bigint, integer);
DROP TRIGGER buckets_bucket_clock_drop ON buckets_bucket;
DROP TRIGGER buckets_bucket_clock_create ON buckets_bucket;
DO $$
DECLARE
    bucket record;
BEGIN
    FOR bucket IN SELECT id FROM buckets_bucket LOOP
        EXECUTE format('DROP SEQUENCE IF EXISTS %I', thinger_bucket_clock(bucket.id));
    END LOOP;
END
$$;
DROP FUNCTION thinger_bucket_clock_drop();
DROP FUNCTION thinger_bucket_clock_create();
DROP FUNCTION thinger_bucket_clock_start(bigint, bigint);
DROP FUNCTION thinger_bucket_clock(bigint);
