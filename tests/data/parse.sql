-- sources.parse_sql('raw_records'), generated: see tests/test_sources.py
WITH located AS (
    SELECT source_file, source_line, text, pre_error, 
           CASE WHEN pre_error IS NULL THEN strpos(text, '{') ELSE 0 END AS brace
    FROM raw_records
), probed AS (
    SELECT *,
           TRY(from_json(CASE WHEN brace = 1 THEN text WHEN brace > 1 THEN substr(text, brace)
                         END, '{"sid": "VARCHAR", "direction": "VARCHAR", "from": "VARCHAR", "to": "VARCHAR", "body": {"text": "VARCHAR"}, "trafficType": "VARCHAR", "status": "VARCHAR", "error": "VARCHAR", "encoding": "VARCHAR", "parts": "VARCHAR", "network": "VARCHAR", "cost": "VARCHAR", "paymentType": "VARCHAR", "created": "VARCHAR", "sent": "VARCHAR", "delivered": "VARCHAR", "updated": "VARCHAR", "statusHistory": [{"before": "VARCHAR", "after": "VARCHAR", "at": "VARCHAR"}], "id": "VARCHAR", "at": "VARCHAR", "type": "VARCHAR", "try": "VARCHAR", "payload": "JSON", "sms": "JSON", "fromNumber": "VARCHAR", "toNumber": "VARCHAR", "bodyText": "VARCHAR"}')) AS p
    FROM located
), detected AS (
    SELECT *,
           p.type IS NOT NULL OR p.payload IS NOT NULL AS is_envelope,
           p.type IS NULL AND p.payload IS NULL
               AND (p.sms IS NOT NULL OR p.fromNumber IS NOT NULL
                    OR p.toNumber IS NOT NULL OR p.bodyText IS NOT NULL) AS is_actions
    FROM probed
), shaped AS (
    SELECT source_file, source_line, text, pre_error, brace, is_envelope, is_actions, 
           p IS NULL AS unparsed,
           CASE WHEN is_envelope THEN TRY(from_json(p.payload, '{"sid": "VARCHAR", "direction": "VARCHAR", "from": "VARCHAR", "to": "VARCHAR", "body": {"text": "VARCHAR"}, "trafficType": "VARCHAR", "status": "VARCHAR", "error": "VARCHAR", "encoding": "VARCHAR", "parts": "VARCHAR", "network": "VARCHAR", "cost": "VARCHAR", "paymentType": "VARCHAR", "created": "VARCHAR", "sent": "VARCHAR", "delivered": "VARCHAR", "updated": "VARCHAR", "statusHistory": [{"before": "VARCHAR", "after": "VARCHAR", "at": "VARCHAR"}]}'))
                WHEN NOT is_actions THEN {'sid': p."sid", 'direction': p."direction", 'from': p."from", 'to': p."to", 'body': p."body", 'trafficType': p."trafficType", 'status': p."status", 'error': p."error", 'encoding': p."encoding", 'parts': p."parts", 'network': p."network", 'cost': p."cost", 'paymentType': p."paymentType", 'created': p."created", 'sent': p."sent", 'delivered': p."delivered", 'updated': p."updated", 'statusHistory': p."statusHistory"}
           END AS w,
           CASE WHEN is_actions AND p.sms IS NOT NULL
                    THEN TRY(from_json(p.sms, '{"sid": "VARCHAR", "direction": "VARCHAR", "fromNumber": "VARCHAR", "fromType": "VARCHAR", "fromCountry": "VARCHAR", "fromLocation": "VARCHAR", "toNumber": "VARCHAR", "toType": "VARCHAR", "toCountry": "VARCHAR", "toLocation": "VARCHAR", "status": "VARCHAR", "encoding": "VARCHAR", "bodyText": "VARCHAR", "parts": "VARCHAR", "billingDebit": "VARCHAR", "billingPaymentType": "VARCHAR", "network": "VARCHAR", "deliveredAt": "VARCHAR", "createdAt": "VARCHAR", "updatedAt": "VARCHAR", "sentAt": "VARCHAR"}'))
                WHEN is_actions
                    THEN TRY(from_json(substr(text, brace), '{"sid": "VARCHAR", "direction": "VARCHAR", "fromNumber": "VARCHAR", "fromType": "VARCHAR", "fromCountry": "VARCHAR", "fromLocation": "VARCHAR", "toNumber": "VARCHAR", "toType": "VARCHAR", "toCountry": "VARCHAR", "toLocation": "VARCHAR", "status": "VARCHAR", "encoding": "VARCHAR", "bodyText": "VARCHAR", "parts": "VARCHAR", "billingDebit": "VARCHAR", "billingPaymentType": "VARCHAR", "network": "VARCHAR", "deliveredAt": "VARCHAR", "createdAt": "VARCHAR", "updatedAt": "VARCHAR", "sentAt": "VARCHAR"}'))
           END AS a,
           CASE WHEN is_envelope THEN p.id END AS "r_event_id",
    CASE WHEN is_envelope AND p.at IS NOT NULL THEN p.at WHEN brace > 42 AND substr(text, 28, 15) = ' callr-webhook ' THEN left(text, 27) END AS "r_event_at",
    CASE WHEN is_envelope THEN p.type END AS "e_type",
    CASE WHEN (strlen(CASE WHEN is_envelope THEN p.try END) > 1 AND NOT regexp_full_match(CASE WHEN is_envelope THEN p.try END, '\d+')) THEN CASE WHEN TRY_CAST(regexp_extract(text, '"(try)"\s*:\s*(-?\d[0-9.eE+-]*)', 2) AS DOUBLE) = TRY_CAST(CASE WHEN is_envelope THEN p.try END AS DOUBLE) THEN regexp_extract(text, '"(try)"\s*:\s*(-?\d[0-9.eE+-]*)', 2) ELSE CASE WHEN is_envelope THEN p.try END END ELSE CASE WHEN is_envelope THEN p.try END END AS "r_event_try"
    FROM detected
), picked AS (
    SELECT * EXCLUDE (w, a),
    CASE WHEN is_actions THEN a."direction" ELSE w."direction" END AS "direction",
    CASE WHEN is_actions THEN a."bodyText" ELSE w.body.text END AS "body_text",
    w."trafficType" AS "traffic_type",
    CASE WHEN is_actions THEN a."status" ELSE w."status" END AS "status",
    w."error" AS "error",
    CASE WHEN is_actions THEN a."encoding" ELSE w."encoding" END AS "encoding",
    CASE WHEN is_actions THEN a."billingPaymentType" ELSE w."paymentType" END AS "payment_type",
    CASE WHEN is_actions THEN a."sid" ELSE w."sid" END AS "r_sid",
    CASE WHEN is_actions THEN a."fromNumber" ELSE w."from" END AS "r_from_number",
    CASE WHEN is_actions THEN a."toNumber" ELSE w."to" END AS "r_to_number",
    CASE WHEN is_actions THEN a."network" ELSE w."network" END AS "r_network",
    a."fromType" AS "r_from_type",
    a."fromCountry" AS "r_from_country",
    a."fromLocation" AS "r_from_location",
    a."toType" AS "r_to_type",
    a."toCountry" AS "r_to_country",
    a."toLocation" AS "r_to_location",
    CASE WHEN (strlen(CASE WHEN is_actions THEN a."parts" ELSE w."parts" END) > 1 AND NOT regexp_full_match(CASE WHEN is_actions THEN a."parts" ELSE w."parts" END, '\d+')) THEN CASE WHEN TRY_CAST(regexp_extract(text, '"(parts)"\s*:\s*(-?\d[0-9.eE+-]*)', 2) AS DOUBLE) = TRY_CAST(CASE WHEN is_actions THEN a."parts" ELSE w."parts" END AS DOUBLE) THEN regexp_extract(text, '"(parts)"\s*:\s*(-?\d[0-9.eE+-]*)', 2) ELSE CASE WHEN is_actions THEN a."parts" ELSE w."parts" END END ELSE CASE WHEN is_actions THEN a."parts" ELSE w."parts" END END AS "r_parts",
    CASE WHEN (strlen(CASE WHEN is_actions THEN a."billingDebit" ELSE w."cost" END) > 15 OR suffix(CASE WHEN is_actions THEN a."billingDebit" ELSE w."cost" END, '.0')) THEN CASE WHEN TRY_CAST(regexp_extract(text, '"(cost|billingDebit)"\s*:\s*(-?\d[0-9.eE+-]*)', 2) AS DOUBLE) = TRY_CAST(CASE WHEN is_actions THEN a."billingDebit" ELSE w."cost" END AS DOUBLE) THEN regexp_extract(text, '"(cost|billingDebit)"\s*:\s*(-?\d[0-9.eE+-]*)', 2) ELSE CASE WHEN is_actions THEN a."billingDebit" ELSE w."cost" END END ELSE CASE WHEN is_actions THEN a."billingDebit" ELSE w."cost" END END AS "r_cost_cents",
    CASE WHEN is_actions THEN a."createdAt" ELSE w."created" END AS "r_created_at",
    CASE WHEN is_actions THEN a."sentAt" ELSE w."sent" END AS "r_sent_at",
    CASE WHEN is_actions THEN a."deliveredAt" ELSE w."delivered" END AS "r_delivered_at",
    CASE WHEN is_actions THEN a."updatedAt" ELSE w."updated" END AS "r_updated_at",
    w.statusHistory AS "v_history",
    CASE WHEN a IS NOT NULL THEN 'actions' ELSE 'webhook' END AS "source"
    FROM shaped
), valued AS (
    SELECT *,
    CASE WHEN "r_parts" IS NULL OR ("r_parts" >= '!' AND NOT suffix("r_parts", ' ') AND length("r_parts") = strlen("r_parts")) THEN "r_parts" ELSE nullif(trim("r_parts"), '') END AS "v_parts",
    CASE WHEN "r_cost_cents" IS NULL OR ("r_cost_cents" >= '!' AND NOT suffix("r_cost_cents", ' ') AND length("r_cost_cents") = strlen("r_cost_cents")) THEN "r_cost_cents" ELSE nullif(trim("r_cost_cents"), '') END AS "v_cost_cents",
    CASE WHEN "r_created_at" IS NULL OR ("r_created_at" >= '!' AND NOT suffix("r_created_at", ' ') AND length("r_created_at") = strlen("r_created_at")) THEN "r_created_at" ELSE nullif(trim("r_created_at"), '') END AS "v_created_at",
    CASE WHEN "r_sent_at" IS NULL OR ("r_sent_at" >= '!' AND NOT suffix("r_sent_at", ' ') AND length("r_sent_at") = strlen("r_sent_at")) THEN "r_sent_at" ELSE nullif(trim("r_sent_at"), '') END AS "v_sent_at",
    CASE WHEN "r_delivered_at" IS NULL OR ("r_delivered_at" >= '!' AND NOT suffix("r_delivered_at", ' ') AND length("r_delivered_at") = strlen("r_delivered_at")) THEN "r_delivered_at" ELSE nullif(trim("r_delivered_at"), '') END AS "v_delivered_at",
    CASE WHEN "r_updated_at" IS NULL OR ("r_updated_at" >= '!' AND NOT suffix("r_updated_at", ' ') AND length("r_updated_at") = strlen("r_updated_at")) THEN "r_updated_at" ELSE nullif(trim("r_updated_at"), '') END AS "v_updated_at",
    CASE WHEN "r_event_at" IS NULL OR ("r_event_at" >= '!' AND NOT suffix("r_event_at", ' ') AND length("r_event_at") = strlen("r_event_at")) THEN "r_event_at" ELSE nullif(trim("r_event_at"), '') END AS "v_event_at",
    CASE WHEN "r_event_try" IS NULL OR ("r_event_try" >= '!' AND NOT suffix("r_event_try", ' ') AND length("r_event_try") = strlen("r_event_try")) THEN "r_event_try" ELSE nullif(trim("r_event_try"), '') END AS "v_event_try",
    CASE WHEN "r_sid" IS NULL OR ("r_sid" >= '!' AND NOT suffix("r_sid", ' ') AND length("r_sid") = strlen("r_sid")) THEN "r_sid" ELSE nullif(trim("r_sid"), '') END AS "sid",
    CASE WHEN "r_from_number" IS NULL OR ("r_from_number" >= '!' AND NOT suffix("r_from_number", ' ') AND length("r_from_number") = strlen("r_from_number")) THEN "r_from_number" ELSE nullif(trim("r_from_number"), '') END AS "from_number",
    CASE WHEN "r_to_number" IS NULL OR ("r_to_number" >= '!' AND NOT suffix("r_to_number", ' ') AND length("r_to_number") = strlen("r_to_number")) THEN "r_to_number" ELSE nullif(trim("r_to_number"), '') END AS "to_number",
    CASE WHEN "r_network" IS NULL OR ("r_network" >= '!' AND NOT suffix("r_network", ' ') AND length("r_network") = strlen("r_network")) THEN "r_network" ELSE nullif(trim("r_network"), '') END AS "network",
    CASE WHEN "r_from_type" IS NULL OR ("r_from_type" >= '!' AND NOT suffix("r_from_type", ' ') AND length("r_from_type") = strlen("r_from_type")) THEN "r_from_type" ELSE nullif(trim("r_from_type"), '') END AS "from_type",
    CASE WHEN "r_from_country" IS NULL OR ("r_from_country" >= '!' AND NOT suffix("r_from_country", ' ') AND length("r_from_country") = strlen("r_from_country")) THEN "r_from_country" ELSE nullif(trim("r_from_country"), '') END AS "from_country",
    CASE WHEN "r_from_location" IS NULL OR ("r_from_location" >= '!' AND NOT suffix("r_from_location", ' ') AND length("r_from_location") = strlen("r_from_location")) THEN "r_from_location" ELSE nullif(trim("r_from_location"), '') END AS "from_location",
    CASE WHEN "r_to_type" IS NULL OR ("r_to_type" >= '!' AND NOT suffix("r_to_type", ' ') AND length("r_to_type") = strlen("r_to_type")) THEN "r_to_type" ELSE nullif(trim("r_to_type"), '') END AS "to_type",
    CASE WHEN "r_to_country" IS NULL OR ("r_to_country" >= '!' AND NOT suffix("r_to_country", ' ') AND length("r_to_country") = strlen("r_to_country")) THEN "r_to_country" ELSE nullif(trim("r_to_country"), '') END AS "to_country",
    CASE WHEN "r_to_location" IS NULL OR ("r_to_location" >= '!' AND NOT suffix("r_to_location", ' ') AND length("r_to_location") = strlen("r_to_location")) THEN "r_to_location" ELSE nullif(trim("r_to_location"), '') END AS "to_location",
    CASE WHEN "r_event_id" IS NULL OR ("r_event_id" >= '!' AND NOT suffix("r_event_id", ' ') AND length("r_event_id") = strlen("r_event_id")) THEN "r_event_id" ELSE nullif(trim("r_event_id"), '') END AS "event_id",
    TRY_CAST(v_history AS STRUCT("before" VARCHAR, "after" VARCHAR, "at" TIMESTAMPTZ)[]) AS "h_cast"
    FROM picked
), typed AS (
    SELECT *,
    CASE WHEN strlen("v_parts") = 1 AND "v_parts" BETWEEN '0' AND '9' THEN TRY_CAST("v_parts" AS INTEGER) WHEN (regexp_full_match("v_parts", '[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,4})?') AND (ltrim(regexp_extract("v_parts", '^[+-]?(\d*)', 1) || regexp_extract("v_parts", '\.(\d*)', 1), '0') = '' OR strlen(rtrim(regexp_extract("v_parts", '^[+-]?(\d*)', 1) || regexp_extract("v_parts", '\.(\d*)', 1), '0')) - (strlen(regexp_extract("v_parts", '^[+-]?(\d*)', 1)) + coalesce(TRY_CAST(regexp_extract("v_parts", '[eE]([+-]?\d+)$', 1) AS INTEGER), 0)) <= 0)) AND TRY_CAST("v_parts" AS DOUBLE) >= 0 THEN TRY_CAST(TRY_CAST("v_parts" AS DOUBLE) AS INTEGER) END AS "parts",
    CASE WHEN regexp_full_match("v_cost_cents", '[+-]?\d{1,12}(\.\d{0,6})?') THEN TRY_CAST("v_cost_cents" AS DECIMAL(18,6)) WHEN (regexp_full_match("v_cost_cents", '[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,4})?') AND (ltrim(regexp_extract("v_cost_cents", '^[+-]?(\d*)', 1) || regexp_extract("v_cost_cents", '\.(\d*)', 1), '0') = '' OR strlen(rtrim(regexp_extract("v_cost_cents", '^[+-]?(\d*)', 1) || regexp_extract("v_cost_cents", '\.(\d*)', 1), '0')) - (strlen(regexp_extract("v_cost_cents", '^[+-]?(\d*)', 1)) + coalesce(TRY_CAST(regexp_extract("v_cost_cents", '[eE]([+-]?\d+)$', 1) AS INTEGER), 0)) <= 6)) THEN TRY_CAST("v_cost_cents" AS DECIMAL(18,6)) END AS "cost_cents",
    coalesce(TRY_CAST("v_created_at" AS TIMESTAMPTZ), TRY_CAST(regexp_replace(upper("v_created_at"), '([T ]\d\d:\d\d):60(\.\d*)?', '\1:59.999999') AS TIMESTAMPTZ)) AS "created_at",
    coalesce(TRY_CAST("v_sent_at" AS TIMESTAMPTZ), TRY_CAST(regexp_replace(upper("v_sent_at"), '([T ]\d\d:\d\d):60(\.\d*)?', '\1:59.999999') AS TIMESTAMPTZ)) AS "sent_at",
    coalesce(TRY_CAST("v_delivered_at" AS TIMESTAMPTZ), TRY_CAST(regexp_replace(upper("v_delivered_at"), '([T ]\d\d:\d\d):60(\.\d*)?', '\1:59.999999') AS TIMESTAMPTZ)) AS "delivered_at",
    coalesce(TRY_CAST("v_event_at" AS TIMESTAMPTZ), TRY_CAST(regexp_replace(upper("v_event_at"), '([T ]\d\d:\d\d):60(\.\d*)?', '\1:59.999999') AS TIMESTAMPTZ)) AS "event_at",
    CASE WHEN strlen("v_event_try") = 1 AND "v_event_try" BETWEEN '0' AND '9' THEN TRY_CAST("v_event_try" AS INTEGER) WHEN (regexp_full_match("v_event_try", '[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,4})?') AND (ltrim(regexp_extract("v_event_try", '^[+-]?(\d*)', 1) || regexp_extract("v_event_try", '\.(\d*)', 1), '0') = '' OR strlen(rtrim(regexp_extract("v_event_try", '^[+-]?(\d*)', 1) || regexp_extract("v_event_try", '\.(\d*)', 1), '0')) - (strlen(regexp_extract("v_event_try", '^[+-]?(\d*)', 1)) + coalesce(TRY_CAST(regexp_extract("v_event_try", '[eE]([+-]?\d+)$', 1) AS INTEGER), 0)) <= 0)) AND TRY_CAST("v_event_try" AS DOUBLE) >= 0 THEN TRY_CAST(TRY_CAST("v_event_try" AS DOUBLE) AS INTEGER) END AS "event_try",
    list_bool_and(list_transform(h_cast, lambda h: coalesce(h.at BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00', false))) IS NOT FALSE AS "plain_history"
    FROM valued
), retyped AS (
    SELECT *,
    CASE WHEN "v_updated_at" = "v_delivered_at" THEN "delivered_at" ELSE coalesce(TRY_CAST("v_updated_at" AS TIMESTAMPTZ), TRY_CAST(regexp_replace(upper("v_updated_at"), '([T ]\d\d:\d\d):60(\.\d*)?', '\1:59.999999') AS TIMESTAMPTZ)) END AS "updated_at",
    CASE WHEN plain_history THEN h_cast ELSE list_transform(v_history, lambda h: {'before': h.before, 'after': h.after, 'at': coalesce(TRY_CAST(nullif(trim(h.at), '') AS TIMESTAMPTZ), TRY_CAST(regexp_replace(upper(nullif(trim(h.at), '')), '([T ]\d\d:\d\d):60(\.\d*)?', '\1:59.999999') AS TIMESTAMPTZ))}) END AS "status_history"
    FROM typed
), judged AS (
    SELECT *,
    CASE WHEN pre_error IS NOT NULL
        OR brace = 0
        OR unparsed
        OR is_envelope AND coalesce(e_type, '') <> 'v2.sms.inbound.received'
        OR sid IS NULL AND from_number IS NULL AND to_number IS NULL
        OR sid IS NULL
        OR from_number IS NULL
        OR to_number IS NULL
        OR ((sid >= '{' AND sid < '|') OR (sid >= '[' AND sid < '\'))
        OR ((from_number >= '{' AND from_number < '|') OR (from_number >= '[' AND from_number < '\'))
        OR ((to_number >= '{' AND to_number < '|') OR (to_number >= '[' AND to_number < '\'))
        OR CASE WHEN NOT is_actions AND (body_text IS NULL OR ((body_text >= '{' AND body_text < '|') OR (body_text >= '[' AND body_text < '\'))) AND contains(text, '"body"') THEN coalesce(json_type(substr(text, brace), CASE WHEN is_envelope THEN '$.payload.body' ELSE '$.body' END), 'NULL') NOT IN ('OBJECT', 'NULL') END
        OR CASE WHEN NOT is_actions AND ((body_text >= '{' AND body_text < '|') OR (body_text >= '[' AND body_text < '\')) THEN json_type(substr(text, brace), CASE WHEN is_envelope THEN '$.payload.body' ELSE '$.body' END || '.text') IN ('OBJECT', 'ARRAY') END
        OR CASE WHEN is_actions AND ((body_text >= '{' AND body_text < '|') OR (body_text >= '[' AND body_text < '\')) THEN coalesce(json_type(substr(text, brace), '$.sms.bodyText'), json_type(substr(text, brace), '$.bodyText')) IN ('OBJECT', 'ARRAY') END
        OR CASE WHEN NOT is_actions AND v_history IS NULL AND contains(text, '"statusHistory"') THEN coalesce(json_type(substr(text, brace), CASE WHEN is_envelope THEN '$.payload.statusHistory' ELSE '$.statusHistory' END), 'NULL') NOT IN ('ARRAY', 'NULL') END
        OR CASE WHEN NOT is_actions AND NOT plain_history AND list_bool_or(list_transform(v_history, lambda h: h.before IS NULL AND h.after IS NULL AND h.at IS NULL)) THEN list_bool_or(list_transform(CASE WHEN is_envelope THEN json_extract(substr(text, brace), '$.payload.statusHistory[*]') ELSE json_extract(substr(text, brace), '$.statusHistory[*]') END, lambda e: json_type(e) <> 'OBJECT')) END
        OR ("v_parts" IS NOT NULL AND ("parts" IS NULL))
        OR ("v_cost_cents" IS NOT NULL AND ("cost_cents" IS NULL))
        OR ("v_created_at" IS NOT NULL AND ("created_at" IS NULL OR NOT ("v_created_at" >= '0' AND "v_created_at" < ':')))
        OR CASE WHEN "v_created_at" IS NOT NULL AND NOT suffix("v_created_at", 'Z') AND NOT (substr("v_created_at", -6, 1) IN ('+', '-') AND substr("v_created_at", -3, 1) = ':' AND substr("v_created_at", -5, 2) <= '23' AND substr("v_created_at", -2, 2) <= '59') THEN regexp_matches("v_created_at", '[T ]\d\d:\d\d(:\d\d(\.\d*)?)? ?[+-](2[4-9]|[3-9]\d|\d\d:?[6-9]\d)(:?\d\d)?$', 'i') ELSE false END
        OR ("v_created_at" IS NOT NULL AND (NOT ("created_at" BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00')))
        OR ("v_sent_at" IS NOT NULL AND ("sent_at" IS NULL OR NOT ("v_sent_at" >= '0' AND "v_sent_at" < ':')))
        OR CASE WHEN "v_sent_at" IS NOT NULL AND NOT suffix("v_sent_at", 'Z') AND NOT (substr("v_sent_at", -6, 1) IN ('+', '-') AND substr("v_sent_at", -3, 1) = ':' AND substr("v_sent_at", -5, 2) <= '23' AND substr("v_sent_at", -2, 2) <= '59') THEN regexp_matches("v_sent_at", '[T ]\d\d:\d\d(:\d\d(\.\d*)?)? ?[+-](2[4-9]|[3-9]\d|\d\d:?[6-9]\d)(:?\d\d)?$', 'i') ELSE false END
        OR ("v_sent_at" IS NOT NULL AND (NOT ("sent_at" BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00')))
        OR ("v_delivered_at" IS NOT NULL AND ("delivered_at" IS NULL OR NOT ("v_delivered_at" >= '0' AND "v_delivered_at" < ':')))
        OR CASE WHEN "v_delivered_at" IS NOT NULL AND NOT suffix("v_delivered_at", 'Z') AND NOT (substr("v_delivered_at", -6, 1) IN ('+', '-') AND substr("v_delivered_at", -3, 1) = ':' AND substr("v_delivered_at", -5, 2) <= '23' AND substr("v_delivered_at", -2, 2) <= '59') THEN regexp_matches("v_delivered_at", '[T ]\d\d:\d\d(:\d\d(\.\d*)?)? ?[+-](2[4-9]|[3-9]\d|\d\d:?[6-9]\d)(:?\d\d)?$', 'i') ELSE false END
        OR ("v_delivered_at" IS NOT NULL AND (NOT ("delivered_at" BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00')))
        OR ("v_updated_at" IS NOT NULL AND ("updated_at" IS NULL OR NOT ("v_updated_at" >= '0' AND "v_updated_at" < ':')))
        OR CASE WHEN "v_updated_at" IS NOT NULL AND NOT suffix("v_updated_at", 'Z') AND NOT (substr("v_updated_at", -6, 1) IN ('+', '-') AND substr("v_updated_at", -3, 1) = ':' AND substr("v_updated_at", -5, 2) <= '23' AND substr("v_updated_at", -2, 2) <= '59') THEN regexp_matches("v_updated_at", '[T ]\d\d:\d\d(:\d\d(\.\d*)?)? ?[+-](2[4-9]|[3-9]\d|\d\d:?[6-9]\d)(:?\d\d)?$', 'i') ELSE false END
        OR ("v_updated_at" IS NOT NULL AND (NOT ("updated_at" BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00')))
        OR ("v_event_at" IS NOT NULL AND ("event_at" IS NULL OR NOT ("v_event_at" >= '0' AND "v_event_at" < ':')))
        OR CASE WHEN "v_event_at" IS NOT NULL AND NOT suffix("v_event_at", 'Z') AND NOT (substr("v_event_at", -6, 1) IN ('+', '-') AND substr("v_event_at", -3, 1) = ':' AND substr("v_event_at", -5, 2) <= '23' AND substr("v_event_at", -2, 2) <= '59') THEN regexp_matches("v_event_at", '[T ]\d\d:\d\d(:\d\d(\.\d*)?)? ?[+-](2[4-9]|[3-9]\d|\d\d:?[6-9]\d)(:?\d\d)?$', 'i') ELSE false END
        OR ("v_event_at" IS NOT NULL AND (NOT ("event_at" BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00')))
        OR ("v_event_try" IS NOT NULL AND ("event_try" IS NULL))
        OR CASE WHEN plain_history THEN false ELSE coalesce(list_bool_or(list_transform(status_history, lambda h: h.at IS NULL)) AND list_bool_or(list_transform(v_history, lambda h: nullif(trim(h.at), '') IS NOT NULL AND coalesce(TRY_CAST(nullif(trim(h.at), '') AS TIMESTAMPTZ), TRY_CAST(regexp_replace(upper(nullif(trim(h.at), '')), '([T ]\d\d:\d\d):60(\.\d*)?', '\1:59.999999') AS TIMESTAMPTZ)) IS NULL)), false) OR coalesce(list_bool_or(list_transform(status_history, lambda h: NOT (h.at BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00'))), false) END
    THEN CASE
        WHEN pre_error IS NOT NULL
            THEN pre_error
        WHEN brace = 0
            THEN 'no JSON object on the line'
        WHEN unparsed
            THEN CASE WHEN regexp_extract(regexp_replace(text, '\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}', '', 'g'), '\\u[dD][89a-fA-F][0-9a-fA-F]{2}') <> '' THEN 'invalid JSON: a lone UTF-16 surrogate escape (' || regexp_extract(regexp_replace(text, '\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}', '', 'g'), '\\u[dD][89a-fA-F][0-9a-fA-F]{2}') || '), half of a character' ELSE 'invalid JSON' END
        WHEN is_envelope AND coalesce(e_type, '') <> 'v2.sms.inbound.received'
            THEN 'not an inbound SMS: event type ' || '''' || left(coalesce(e_type, 'missing'), 60) || ''''
        WHEN sid IS NULL AND from_number IS NULL AND to_number IS NULL
            THEN 'not an SMS record (no sid, sender or recipient)'
        WHEN sid IS NULL
            THEN 'missing sid'
        WHEN from_number IS NULL
            THEN 'missing sender (from / fromNumber)'
        WHEN to_number IS NULL
            THEN 'missing recipient (to / toNumber)'
        WHEN ((sid >= '{' AND sid < '|') OR (sid >= '[' AND sid < '\'))
            THEN 'sid: ' || '''' || left(sid, 60) || '''' || ' is an object or a list, not text'
        WHEN ((from_number >= '{' AND from_number < '|') OR (from_number >= '[' AND from_number < '\'))
            THEN 'from_number: ' || '''' || left(from_number, 60) || '''' || ' is an object or a list, not text'
        WHEN ((to_number >= '{' AND to_number < '|') OR (to_number >= '[' AND to_number < '\'))
            THEN 'to_number: ' || '''' || left(to_number, 60) || '''' || ' is an object or a list, not text'
        WHEN CASE WHEN NOT is_actions AND (body_text IS NULL OR ((body_text >= '{' AND body_text < '|') OR (body_text >= '[' AND body_text < '\'))) AND contains(text, '"body"') THEN coalesce(json_type(substr(text, brace), CASE WHEN is_envelope THEN '$.payload.body' ELSE '$.body' END), 'NULL') NOT IN ('OBJECT', 'NULL') END
            THEN 'body is ' || CASE json_type(substr(text, brace), CASE WHEN is_envelope THEN '$.payload.body' ELSE '$.body' END) WHEN 'VARCHAR' THEN 'a string' WHEN 'ARRAY' THEN 'a list' WHEN 'OBJECT' THEN 'an object' WHEN 'BOOLEAN' THEN 'a boolean' ELSE 'a number' END || ', not an object with a text'
        WHEN CASE WHEN NOT is_actions AND ((body_text >= '{' AND body_text < '|') OR (body_text >= '[' AND body_text < '\')) THEN json_type(substr(text, brace), CASE WHEN is_envelope THEN '$.payload.body' ELSE '$.body' END || '.text') IN ('OBJECT', 'ARRAY') END
            THEN 'body.text is ' || CASE json_type(substr(text, brace), CASE WHEN is_envelope THEN '$.payload.body' ELSE '$.body' END || '.text') WHEN 'VARCHAR' THEN 'a string' WHEN 'ARRAY' THEN 'a list' WHEN 'OBJECT' THEN 'an object' WHEN 'BOOLEAN' THEN 'a boolean' ELSE 'a number' END || ', not text'
        WHEN CASE WHEN is_actions AND ((body_text >= '{' AND body_text < '|') OR (body_text >= '[' AND body_text < '\')) THEN coalesce(json_type(substr(text, brace), '$.sms.bodyText'), json_type(substr(text, brace), '$.bodyText')) IN ('OBJECT', 'ARRAY') END
            THEN 'bodyText is ' || CASE coalesce(json_type(substr(text, brace), '$.sms.bodyText'), json_type(substr(text, brace), '$.bodyText')) WHEN 'VARCHAR' THEN 'a string' WHEN 'ARRAY' THEN 'a list' WHEN 'OBJECT' THEN 'an object' WHEN 'BOOLEAN' THEN 'a boolean' ELSE 'a number' END || ', not text'
        WHEN CASE WHEN NOT is_actions AND v_history IS NULL AND contains(text, '"statusHistory"') THEN coalesce(json_type(substr(text, brace), CASE WHEN is_envelope THEN '$.payload.statusHistory' ELSE '$.statusHistory' END), 'NULL') NOT IN ('ARRAY', 'NULL') END
            THEN 'statusHistory is ' || CASE json_type(substr(text, brace), CASE WHEN is_envelope THEN '$.payload.statusHistory' ELSE '$.statusHistory' END) WHEN 'VARCHAR' THEN 'a string' WHEN 'ARRAY' THEN 'a list' WHEN 'OBJECT' THEN 'an object' WHEN 'BOOLEAN' THEN 'a boolean' ELSE 'a number' END || ', not a list of objects'
        WHEN CASE WHEN NOT is_actions AND NOT plain_history AND list_bool_or(list_transform(v_history, lambda h: h.before IS NULL AND h.after IS NULL AND h.at IS NULL)) THEN list_bool_or(list_transform(CASE WHEN is_envelope THEN json_extract(substr(text, brace), '$.payload.statusHistory[*]') ELSE json_extract(substr(text, brace), '$.statusHistory[*]') END, lambda e: json_type(e) <> 'OBJECT')) END
            THEN 'statusHistory has an entry that is not an object'
        WHEN ("v_parts" IS NOT NULL AND ("parts" IS NULL))
            THEN 'parts: ' || '''' || left("v_parts", 60) || '''' || ' is not a whole number'
        WHEN ("v_cost_cents" IS NOT NULL AND ("cost_cents" IS NULL))
            THEN 'cost_cents: ' || '''' || left("v_cost_cents", 60) || '''' || ' is not an amount with at most 6 decimals'
        WHEN ("v_created_at" IS NOT NULL AND ("created_at" IS NULL OR NOT ("v_created_at" >= '0' AND "v_created_at" < ':')))
            THEN 'created_at: ' || '''' || left("v_created_at", 60) || '''' || ' is not an RFC 3339 timestamp'
        WHEN CASE WHEN "v_created_at" IS NOT NULL AND NOT suffix("v_created_at", 'Z') AND NOT (substr("v_created_at", -6, 1) IN ('+', '-') AND substr("v_created_at", -3, 1) = ':' AND substr("v_created_at", -5, 2) <= '23' AND substr("v_created_at", -2, 2) <= '59') THEN regexp_matches("v_created_at", '[T ]\d\d:\d\d(:\d\d(\.\d*)?)? ?[+-](2[4-9]|[3-9]\d|\d\d:?[6-9]\d)(:?\d\d)?$', 'i') ELSE false END
            THEN 'created_at: ' || '''' || left("v_created_at", 60) || '''' || ' has an impossible UTC offset'
        WHEN ("v_created_at" IS NOT NULL AND (NOT ("created_at" BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00')))
            THEN 'created_at: ' || '''' || left("v_created_at", 60) || '''' || ' is not a timestamp between 1678 and 2261'
        WHEN ("v_sent_at" IS NOT NULL AND ("sent_at" IS NULL OR NOT ("v_sent_at" >= '0' AND "v_sent_at" < ':')))
            THEN 'sent_at: ' || '''' || left("v_sent_at", 60) || '''' || ' is not an RFC 3339 timestamp'
        WHEN CASE WHEN "v_sent_at" IS NOT NULL AND NOT suffix("v_sent_at", 'Z') AND NOT (substr("v_sent_at", -6, 1) IN ('+', '-') AND substr("v_sent_at", -3, 1) = ':' AND substr("v_sent_at", -5, 2) <= '23' AND substr("v_sent_at", -2, 2) <= '59') THEN regexp_matches("v_sent_at", '[T ]\d\d:\d\d(:\d\d(\.\d*)?)? ?[+-](2[4-9]|[3-9]\d|\d\d:?[6-9]\d)(:?\d\d)?$', 'i') ELSE false END
            THEN 'sent_at: ' || '''' || left("v_sent_at", 60) || '''' || ' has an impossible UTC offset'
        WHEN ("v_sent_at" IS NOT NULL AND (NOT ("sent_at" BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00')))
            THEN 'sent_at: ' || '''' || left("v_sent_at", 60) || '''' || ' is not a timestamp between 1678 and 2261'
        WHEN ("v_delivered_at" IS NOT NULL AND ("delivered_at" IS NULL OR NOT ("v_delivered_at" >= '0' AND "v_delivered_at" < ':')))
            THEN 'delivered_at: ' || '''' || left("v_delivered_at", 60) || '''' || ' is not an RFC 3339 timestamp'
        WHEN CASE WHEN "v_delivered_at" IS NOT NULL AND NOT suffix("v_delivered_at", 'Z') AND NOT (substr("v_delivered_at", -6, 1) IN ('+', '-') AND substr("v_delivered_at", -3, 1) = ':' AND substr("v_delivered_at", -5, 2) <= '23' AND substr("v_delivered_at", -2, 2) <= '59') THEN regexp_matches("v_delivered_at", '[T ]\d\d:\d\d(:\d\d(\.\d*)?)? ?[+-](2[4-9]|[3-9]\d|\d\d:?[6-9]\d)(:?\d\d)?$', 'i') ELSE false END
            THEN 'delivered_at: ' || '''' || left("v_delivered_at", 60) || '''' || ' has an impossible UTC offset'
        WHEN ("v_delivered_at" IS NOT NULL AND (NOT ("delivered_at" BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00')))
            THEN 'delivered_at: ' || '''' || left("v_delivered_at", 60) || '''' || ' is not a timestamp between 1678 and 2261'
        WHEN ("v_updated_at" IS NOT NULL AND ("updated_at" IS NULL OR NOT ("v_updated_at" >= '0' AND "v_updated_at" < ':')))
            THEN 'updated_at: ' || '''' || left("v_updated_at", 60) || '''' || ' is not an RFC 3339 timestamp'
        WHEN CASE WHEN "v_updated_at" IS NOT NULL AND NOT suffix("v_updated_at", 'Z') AND NOT (substr("v_updated_at", -6, 1) IN ('+', '-') AND substr("v_updated_at", -3, 1) = ':' AND substr("v_updated_at", -5, 2) <= '23' AND substr("v_updated_at", -2, 2) <= '59') THEN regexp_matches("v_updated_at", '[T ]\d\d:\d\d(:\d\d(\.\d*)?)? ?[+-](2[4-9]|[3-9]\d|\d\d:?[6-9]\d)(:?\d\d)?$', 'i') ELSE false END
            THEN 'updated_at: ' || '''' || left("v_updated_at", 60) || '''' || ' has an impossible UTC offset'
        WHEN ("v_updated_at" IS NOT NULL AND (NOT ("updated_at" BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00')))
            THEN 'updated_at: ' || '''' || left("v_updated_at", 60) || '''' || ' is not a timestamp between 1678 and 2261'
        WHEN ("v_event_at" IS NOT NULL AND ("event_at" IS NULL OR NOT ("v_event_at" >= '0' AND "v_event_at" < ':')))
            THEN 'event_at: ' || '''' || left("v_event_at", 60) || '''' || ' is not an RFC 3339 timestamp'
        WHEN CASE WHEN "v_event_at" IS NOT NULL AND NOT suffix("v_event_at", 'Z') AND NOT (substr("v_event_at", -6, 1) IN ('+', '-') AND substr("v_event_at", -3, 1) = ':' AND substr("v_event_at", -5, 2) <= '23' AND substr("v_event_at", -2, 2) <= '59') THEN regexp_matches("v_event_at", '[T ]\d\d:\d\d(:\d\d(\.\d*)?)? ?[+-](2[4-9]|[3-9]\d|\d\d:?[6-9]\d)(:?\d\d)?$', 'i') ELSE false END
            THEN 'event_at: ' || '''' || left("v_event_at", 60) || '''' || ' has an impossible UTC offset'
        WHEN ("v_event_at" IS NOT NULL AND (NOT ("event_at" BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00')))
            THEN 'event_at: ' || '''' || left("v_event_at", 60) || '''' || ' is not a timestamp between 1678 and 2261'
        WHEN ("v_event_try" IS NOT NULL AND ("event_try" IS NULL))
            THEN 'event_try: ' || '''' || left("v_event_try", 60) || '''' || ' is not a whole number'
        WHEN CASE WHEN plain_history THEN false ELSE coalesce(list_bool_or(list_transform(status_history, lambda h: h.at IS NULL)) AND list_bool_or(list_transform(v_history, lambda h: nullif(trim(h.at), '') IS NOT NULL AND coalesce(TRY_CAST(nullif(trim(h.at), '') AS TIMESTAMPTZ), TRY_CAST(regexp_replace(upper(nullif(trim(h.at), '')), '([T ]\d\d:\d\d):60(\.\d*)?', '\1:59.999999') AS TIMESTAMPTZ)) IS NULL)), false) OR coalesce(list_bool_or(list_transform(status_history, lambda h: NOT (h.at BETWEEN TIMESTAMPTZ '1678-01-01 00:00:00+00' AND TIMESTAMPTZ '2262-01-01 00:00:00+00'))), false) END
            THEN 'status_history: an entry''s at is not a timestamp between 1678 and 2261'
    END END AS reject_reason
    FROM retyped
)
SELECT CAST("sid" AS VARCHAR) AS "sid",
       CAST("direction" AS VARCHAR) AS "direction",
       CAST("from_number" AS VARCHAR) AS "from_number",
       CAST("to_number" AS VARCHAR) AS "to_number",
       CAST("body_text" AS VARCHAR) AS "body_text",
       CAST("traffic_type" AS VARCHAR) AS "traffic_type",
       CAST("status" AS VARCHAR) AS "status",
       CAST("error" AS VARCHAR) AS "error",
       CAST("encoding" AS VARCHAR) AS "encoding",
       CAST("parts" AS INTEGER) AS "parts",
       CAST("network" AS VARCHAR) AS "network",
       CAST("cost_cents" AS DECIMAL(18,6)) AS "cost_cents",
       CAST("payment_type" AS VARCHAR) AS "payment_type",
       CAST("created_at" AS TIMESTAMPTZ) AS "created_at",
       CAST("sent_at" AS TIMESTAMPTZ) AS "sent_at",
       CAST("delivered_at" AS TIMESTAMPTZ) AS "delivered_at",
       CAST("updated_at" AS TIMESTAMPTZ) AS "updated_at",
       CAST("from_type" AS VARCHAR) AS "from_type",
       CAST("from_country" AS VARCHAR) AS "from_country",
       CAST("from_location" AS VARCHAR) AS "from_location",
       CAST("to_type" AS VARCHAR) AS "to_type",
       CAST("to_country" AS VARCHAR) AS "to_country",
       CAST("to_location" AS VARCHAR) AS "to_location",
       CAST(NULL AS VARCHAR) AS "from_carrier",
       CAST(NULL AS VARCHAR) AS "network_country",
       CAST(NULL AS VARCHAR) AS "network_operator",
       CAST(NULL AS VARCHAR) AS "computed_encoding",
       CAST(NULL AS INTEGER) AS "computed_parts",
       CAST(NULL AS VARCHAR) AS "unicode_chars",
       CAST(NULL AS VARCHAR) AS "keyword",
       CAST("status_history" AS STRUCT("before" VARCHAR, "after" VARCHAR, "at" TIMESTAMPTZ)[]) AS "status_history",
       CAST("source" AS VARCHAR) AS "source",
       CAST("event_id" AS VARCHAR) AS "event_id",
       CAST("event_at" AS TIMESTAMPTZ) AS "event_at",
       CAST("event_try" AS INTEGER) AS "event_try",
       CAST("source_file" AS VARCHAR) AS "source_file",
       CAST("source_line" AS BIGINT) AS "source_line",
       
       reject_reason,
       CASE WHEN reject_reason IS NOT NULL THEN text END AS text
FROM judged;
