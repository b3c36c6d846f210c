-- The pipeline's own bookkeeping, next to the master data: every run (its batch id is the run id,
-- so watermarks never depend on the clock), what each run read from Kafka, acknowledged gaps in
-- the Kafka data, and a few keyed values (fingerprints, schedules). The data and its offsets live
-- in Iceberg; this is the record of what the runner did. `scope` is the dbt schema suffix
-- (DBT_SCHEMA_SUFFIX), empty for the lakehouse itself: tests and benchmarks run whole pipelines
-- into their own schemas and keep their own records.

CREATE SCHEMA IF NOT EXISTS pipeline;

CREATE TABLE IF NOT EXISTS pipeline.runs (
    run_id        bigserial   PRIMARY KEY,
    scope         text        NOT NULL DEFAULT '',
    trigger       text        NOT NULL,            -- loop, catch-up, manual, maintenance, tests
    command       text        NOT NULL,
    reason        text,                            -- why it ran: new messages, master data, ...
    status        text        NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'ok', 'failed', 'interrupted', 'idle')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    duration_s    double precision,
    messages_taken    bigint,
    messages_behind   bigint,
    rows_landed       bigint,
    rows_rejected     bigint,
    error         text,
    host          text,
    pid           integer
);
CREATE INDEX IF NOT EXISTS runs_scope_status_idx ON pipeline.runs (scope, status, run_id);

-- One row per topic partition a run read: [start_offset, end_offset) and the partition's end
-- when the batch was planned. Lag now = the partition's end now - end_offset of its last ok run.
CREATE TABLE IF NOT EXISTS pipeline.run_offsets (
    run_id          bigint  NOT NULL REFERENCES pipeline.runs (run_id),
    topic           text    NOT NULL,
    topic_id        text    NOT NULL,
    kafka_partition integer NOT NULL,
    start_offset    bigint  NOT NULL,
    end_offset      bigint  NOT NULL,
    log_end_offset  bigint  NOT NULL,
    PRIMARY KEY (run_id, topic, kafka_partition)
);

-- Kafka data the pipeline could no longer read: a recreated topic, or messages deleted by
-- retention before they were loaded. A gap stops the pipeline until someone acknowledges it
-- (./lakehouse pipeline acknowledge-gap); loading then resumes at resume_offset.
CREATE TABLE IF NOT EXISTS pipeline.gaps (
    gap_id            bigserial   PRIMARY KEY,
    scope             text        NOT NULL DEFAULT '',
    topic             text        NOT NULL,
    topic_id          text        NOT NULL,        -- the topic the pipeline resumes on
    kafka_partition   integer     NOT NULL,
    gap_kind          text        NOT NULL CHECK (gap_kind IN ('TOPIC_RECREATED', 'RETENTION', 'OFFSETS_RESET', 'INCOMPLETE_BATCH')),
    previous_topic_id text,
    first_missing_offset bigint,
    resume_offset     bigint      NOT NULL,
    messages_lost     bigint,                      -- null when Kafka cannot tell
    detail            text        NOT NULL,
    detected_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at   timestamptz,
    acknowledged_by   text,
    UNIQUE (scope, topic, topic_id, kafka_partition, gap_kind, resume_offset)
);

CREATE TABLE IF NOT EXISTS pipeline.state (
    scope         text        NOT NULL DEFAULT '',
    state_key     text        NOT NULL,
    state_value   text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, state_key)
);

-- Health alerts out (smartmeter/pipeline/alerts.py). The alerts topic is the record of what was
-- published; these tables are a copy of it: each meter's last published alert, and how far into
-- the topic (per partition) that copy goes. A run reads the topic from there before it diffs.
CREATE TABLE IF NOT EXISTS pipeline.alert_devices (
    scope           text        NOT NULL DEFAULT '',
    device_id       text        NOT NULL,
    alert_status    text        NOT NULL CHECK (alert_status IN ('ACTION_REQUIRED', 'CLEARED')),
    since_date      date        NOT NULL,
    alert_id        text        NOT NULL,
    published_at    timestamptz NOT NULL,
    PRIMARY KEY (scope, device_id)
);

CREATE TABLE IF NOT EXISTS pipeline.alert_offsets (
    scope           text    NOT NULL DEFAULT '',
    topic           text    NOT NULL,
    topic_id        text    NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset     bigint  NOT NULL,
    PRIMARY KEY (scope, topic, kafka_partition)
);
