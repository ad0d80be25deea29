-- Webhook endpoints, their deliveries (one per event per endpoint) and every attempt.

CREATE TABLE endpoints (
    account_id            TEXT NOT NULL,
    id                    UUID NOT NULL,
    url                   TEXT NOT NULL,
    event_types           TEXT[] NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    enabled               BOOLEAN NOT NULL DEFAULT true,
    -- Most deliveries per second (NULL: no limit beyond the per-endpoint concurrency).
    rate_limit_per_second INT,
    secret                TEXT NOT NULL,
    -- A rotated secret keeps signing until `previous_secret_until`.
    previous_secret       TEXT,
    previous_secret_until TIMESTAMPTZ,
    disabled_reason       TEXT NOT NULL DEFAULT '',
    -- Set by the first failure after a success; cleared by a success.
    failing_since         TIMESTAMPTZ,
    -- A 429 / 5xx answer with Retry-After pauses the whole endpoint until then.
    throttled_until       TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX endpoints_id ON endpoints (id);
CREATE INDEX endpoints_enabled ON endpoints (account_id) WHERE enabled;

CREATE TABLE deliveries (
    id                UUID PRIMARY KEY,
    account_id        TEXT NOT NULL,
    endpoint_id       UUID NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    -- The event id (or the command's idempotency key): the `webhook-id` header.
    event_id          TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    -- The signed JSON body, exactly as sent on every attempt.
    body              TEXT NOT NULL,
    status            TEXT NOT NULL,
    attempts          INT NOT NULL DEFAULT 0,
    -- Index of the next attempt in the retry schedule.
    step              INT NOT NULL DEFAULT 0,
    next_attempt_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Taken by a sender until then (a crashed sender's claim runs out).
    claimed_until     TIMESTAMPTZ,
    response_code     INT NOT NULL DEFAULT 0,
    latency_ms        INT NOT NULL DEFAULT 0,
    response_excerpt  TEXT NOT NULL DEFAULT '',
    error             TEXT NOT NULL DEFAULT '',
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at      TIMESTAMPTZ,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX deliveries_due ON deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_list ON deliveries (endpoint_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX deliveries_account_id ON deliveries (account_id, id);

CREATE TABLE attempts (
    delivery_id      UUID NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt          INT NOT NULL,
    endpoint_id      UUID NOT NULL,
    at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    response_code    INT NOT NULL DEFAULT 0,
    latency_ms       INT NOT NULL DEFAULT 0,
    response_excerpt TEXT NOT NULL DEFAULT '',
    error            TEXT NOT NULL DEFAULT '',
    succeeded        BOOLEAN NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, at DESC);
