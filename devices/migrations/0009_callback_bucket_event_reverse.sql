DROP FUNCTION thinger_callback(text, text, bigint, boolean, jsonb, text, jsonb, jsonb, bigint,
                               timestamptz, bigint, date, inet, integer, integer);
