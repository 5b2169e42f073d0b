-- The device callback's writer on PostgreSQL, as 0006_callback_events.sql wrote it, now also
-- returning the bucket the call stored records in (wrote_bucket, its id), so that the caller
-- announces them as a live event (buckets.events.RECORDS_WRITE) at no extra query.

DROP FUNCTION thinger_callback(text, text, bigint, boolean, jsonb, text, jsonb, jsonb, bigint,
                               timestamptz, bigint, date, inet, integer, integer);

-- p_generation: the device token's generation, NULL for the owner's tokens (good for any).
-- p_stores: the body is data, so the actions run; p_value is the payload as JSON text (NULL: JSON
-- null), p_echo the payload as the call sent it; p_explicit and p_server the records, as
-- thinger_bucket_write takes them; p_call_ts the ts of an endpoint call. p_at is the call's time
-- (p_now in milliseconds, p_date its day for the statistics), p_ip the device's address,
-- p_rx the bytes received, p_default_timeout the timeout of a device without settings.
-- Returns the reason the device refuses the call (NULL: written), the answer's body (NULL: an
-- empty 200), the endpoint call to hand to the workers (NULL: none), whether the call connected
-- the device, the id of the property it set and that of the bucket it stored records in (NULL:
-- none).
CREATE FUNCTION thinger_callback(
    p_user text, p_device text, p_generation bigint,
    p_stores boolean, p_value jsonb, p_echo text, p_explicit jsonb, p_server jsonb,
    p_call_ts bigint, p_at timestamptz, p_now bigint, p_date date, p_ip inet, p_rx integer,
    p_default_timeout integer
) RETURNS TABLE (reason text, body text, call_id bigint, came_online boolean,
                set_property text, wrote_bucket text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    dev record;
    was_connected boolean;
BEGIN
    -- devices.selectors.device_callback_sql: the device as a callback sees it.
    SELECT d.id, d.token_generation, d.enabled,
           COALESCE(s.timeout, p_default_timeout) AS timeout,
           CASE WHEN b.enabled THEN s.write_bucket_id END AS bucket,
           b.identifier AS bucket_identifier,
           s.set_property_id AS set_id,
           sp.identifier AS set_identifier,
           CASE WHEN e.enabled THEN s.call_endpoint_id END AS endpoint,
           s.send_property_id AS send_id,
           CAST(p.value AS text) AS send_value
      INTO dev
      FROM devices_device d
      JOIN auth_user u ON u.id = d.owner_id
      LEFT JOIN devices_callbacksettings s ON s.device_id = d.id
      LEFT JOIN buckets_bucket b ON b.id = s.write_bucket_id
      LEFT JOIN endpoints_endpoint e ON e.id = s.call_endpoint_id
      LEFT JOIN devices_property p ON p.id = s.send_property_id
      LEFT JOIN devices_property sp ON sp.id = s.set_property_id
     WHERE u.username = p_user AND d.identifier = p_device;

    -- rules.refusal
    reason := CASE
        WHEN NOT FOUND THEN 'missing'
        WHEN p_generation IS NOT NULL AND p_generation <> dev.token_generation THEN 'rotated'
        WHEN NOT dev.enabled THEN 'disabled'
    END;
    IF reason IS NOT NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;

    -- The calls of one device queue here, in order, and find its rows free: without the lock
    -- they would all wait on the rows the call before them locked, and race when it commits.
    -- Each statement below starts after the call before committed, so none of them finds its
    -- rows changed since its snapshot (which PostgreSQL would recheck, row by row).
    PERFORM pg_advisory_xact_lock(dev.id);

    IF p_stores THEN
        IF dev.bucket IS NOT NULL THEN
            PERFORM thinger_bucket_write(dev.bucket, p_device, p_explicit, p_server, p_now);
            wrote_bucket := dev.bucket_identifier;
        END IF;
        IF dev.set_id IS NOT NULL THEN
            UPDATE devices_property SET value = p_value, modified = p_at WHERE id = dev.set_id;
            set_property := dev.set_identifier;
        END IF;
        IF dev.endpoint IS NOT NULL THEN
            -- endpoints.services.endpoint_call_record: pending, due now (the rest are defaults).
            INSERT INTO endpoints_endpointcall (endpoint_id, device_id, payload, ts, created,
                                                next_attempt_at)
            VALUES (dev.endpoint, dev.id, p_value, p_call_ts, p_at, p_at)
            RETURNING id INTO call_id;
        END IF;
    END IF;

    -- rules.response_text
    body := CASE
        WHEN dev.send_id IS NULL THEN NULL
        WHEN p_stores AND dev.send_id = dev.set_id THEN p_echo
        ELSE COALESCE(dev.send_value, 'null')
    END;

    -- The device is connected until its deadline (rules.deadline); the call that connects it
    -- writes the "connected" event. The state before comes from the row locked here, so that a
    -- sweep disconnecting the device meanwhile is seen.
    UPDATE devices_device d
       SET connected = TRUE,
           connected_at = CASE WHEN before.connected THEN d.connected_at ELSE p_at END,
           last_call_at = p_at,
           remote_ip = p_ip,
           timeout_at = p_at + make_interval(mins => dev.timeout)
      FROM (SELECT id, connected FROM devices_device WHERE id = dev.id FOR UPDATE) AS before
     WHERE d.id = before.id
    RETURNING before.connected INTO was_connected;
    came_online := NOT was_connected;
    IF NOT was_connected THEN
        INSERT INTO devices_connectionevent (device_id, kind, at, remote_ip)
        VALUES (dev.id, 'connected', p_at, p_ip);
    END IF;

    -- Today's statistics grow by one call and its bytes.
    INSERT INTO devices_devicedailystats AS s (device_id, date, calls, rx_bytes, tx_bytes)
    VALUES (dev.id, p_date, 1, p_rx, COALESCE(octet_length(body), 0))
    ON CONFLICT (device_id, date) DO UPDATE
       SET calls = s.calls + 1,
           rx_bytes = s.rx_bytes + excluded.rx_bytes,
           tx_bytes = s.tx_bytes + excluded.tx_bytes;
    RETURN NEXT;
END
$$;
