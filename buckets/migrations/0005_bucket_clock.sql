-- A bucket's clock and its writes, on PostgreSQL (buckets.clock and buckets.services call these).
--
-- Two records of a bucket never share a ts. A record the client gives a ts replaces the one at
-- that ts; a record at the server's time takes the next millisecond of the bucket's clock, at
-- or after the server's time. The clock is a sequence of the bucket's own: a sequence is not
-- transactional, so a claim never waits for another writer's transaction to end, whatever the
-- number of devices writing the bucket. Claims are serialised by a session-level advisory lock
-- held only while the clock is read and moved (two sequence operations), never to the end of
-- the transaction. Its key is the bucket's id, negated (device locks use positive ids).

-- The name of a bucket's clock. (PL/pgSQL rather than SQL: a SQL function that is not inlined
-- is parsed again at every call.)
CREATE FUNCTION thinger_bucket_clock(p_bucket bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$ BEGIN RETURN 'buckets_bucket_clock_' || p_bucket; END $$;

-- A bucket's clock, its last millisecond p_last. IF NOT EXISTS: after a TRUNCATE (which fires
-- no row trigger) a clock of the same name may be left; it is reset.
CREATE FUNCTION thinger_bucket_clock_start(p_bucket bigint, p_last bigint) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I AS bigint MINVALUE 0',
                   thinger_bucket_clock(p_bucket));
    PERFORM setval(thinger_bucket_clock(p_bucket)::regclass, p_last);
END
$$;

-- Every bucket has its clock from the moment it exists, whatever created it (the services, the
-- admin, a bulk insert), and loses it with its row.
CREATE FUNCTION thinger_bucket_clock_create() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM thinger_bucket_clock_start(NEW.id, NEW.last_server_ts);
    RETURN NULL;
END
$$;

CREATE FUNCTION thinger_bucket_clock_drop() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE format('DROP SEQUENCE IF EXISTS %I', thinger_bucket_clock(OLD.id));
    RETURN NULL;
END
$$;

CREATE TRIGGER buckets_bucket_clock_create AFTER INSERT ON buckets_bucket
    FOR EACH ROW EXECUTE FUNCTION thinger_bucket_clock_create();
CREATE TRIGGER buckets_bucket_clock_drop AFTER DELETE ON buckets_bucket
    FOR EACH ROW EXECUTE FUNCTION thinger_bucket_clock_drop();

-- The buckets that exist already, their clocks where the API's writes left them.
SELECT thinger_bucket_clock_start(id, last_server_ts) FROM buckets_bucket;

-- The first of p_count consecutive milliseconds of the bucket's clock, at or after p_now; the
-- clock moves past them. A bucket that no longer exists (deleted while a call was writing it)
-- is a foreign key violation, as inserting its records would be.
CREATE FUNCTION thinger_bucket_claim(p_bucket bigint, p_now bigint, p_count integer)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    clock regclass := to_regclass(thinger_bucket_clock(p_bucket));
    next bigint;
    first bigint;
BEGIN
    IF clock IS NULL THEN
        RAISE EXCEPTION 'bucket % does not exist', p_bucket USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM pg_advisory_lock(-p_bucket);
    BEGIN
        next := nextval(clock);
        first := GREATEST(next, p_now);
        IF first + p_count - 1 <> next THEN
            PERFORM setval(clock, first + p_count - 1);
        END IF;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        -- A session lock outlives the statement: never leave it behind.
        PERFORM pg_advisory_unlock(-p_bucket);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(-p_bucket);
    RETURN first;
END
$$;

-- Store records in a bucket for the device p_device (NULL: the API). p_explicit is a JSON array
-- of [ts, value] pairs, each ts once (a client's own ts: the record replaces the one at that ts),
-- in ascending order, so that concurrent writers lock the rows they replace in the same order.
-- p_server is a JSON array of values to store at the server's time, p_now in milliseconds: they
-- take consecutive milliseconds of the clock, in order, and never replace anything; those whose
-- millisecond a record given its own ts already holds take the next claim, until every one is
-- stored. A JSON null value is stored as SQL NULL, as the ORM stores it.
CREATE FUNCTION thinger_bucket_write(
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
