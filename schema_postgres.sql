-- PostgreSQL schema: the same numbered migrations as schema.sql, in
-- PostgreSQL's dialect. Keep the two files in step.

-- migration 1: accounts, settings, request counter
CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT        NOT NULL,
    password_hash TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE request_counter (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT  NOT NULL
);
INSERT INTO request_counter (id, value) VALUES (1, 0);

-- migration 2: collections, their movies, and each user's genre tally
CREATE TABLE collections (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid        TEXT        NOT NULL UNIQUE,
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       TEXT        NOT NULL,
    description TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX collections_user ON collections (user_id, id);

CREATE TABLE collection_movies (
    collection_id BIGINT  NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    movie_uuid    TEXT    NOT NULL,
    title         TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    genres        TEXT    NOT NULL,
    PRIMARY KEY (collection_id, position),
    UNIQUE (collection_id, movie_uuid)
);

CREATE TABLE user_genres (
    user_id BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    genre   TEXT    NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (user_id, genre)
);

-- migration 3: account identifiers that are never reused, a per-user
-- version and collection count, login lockouts, top genres by index
ALTER TABLE users ADD COLUMN uuid TEXT;
UPDATE users SET uuid = gen_random_uuid()::text;
ALTER TABLE users ALTER COLUMN uuid SET NOT NULL;
CREATE UNIQUE INDEX users_uuid_key ON users (uuid);
ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN collections INTEGER NOT NULL DEFAULT 0;
UPDATE users SET collections = (SELECT count(*) FROM collections c WHERE c.user_id = users.id);

CREATE TABLE login_failures (
    username     TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start BIGINT  NOT NULL,
    locked_until BIGINT  NOT NULL
);

CREATE TABLE counter_shares (
    process TEXT   PRIMARY KEY,
    total   BIGINT NOT NULL
);

-- In byte order, as the top-three query and Go compare genre names.
CREATE INDEX user_genres_top ON user_genres (user_id, n DESC, genre COLLATE "C");

-- migration 4: a collection's movies in its own row
ALTER TABLE collections ADD COLUMN movies TEXT NOT NULL DEFAULT '[]';
UPDATE collections c SET movies = (
    SELECT json_agg(json_build_object('title', m.title, 'description', m.description,
        'genres', m.genres, 'uuid', m.movie_uuid) ORDER BY m.position)::text
    FROM collection_movies m WHERE m.collection_id = c.id)
WHERE EXISTS (SELECT 1 FROM collection_movies m WHERE m.collection_id = c.id);
DROP TABLE collection_movies;

-- migration 5: each collection counts its own genres; no per-user tally
-- genres is the collection's genre counts, a JSON object of how many of
-- its movies carry each genre, filled in for existing rows by the step
-- this build runs after this migration (countCollectionGenres). The
-- favourite genres are summed from these counts when a list is read, so
-- a write stores one row however many genres it has, and the per-user
-- tally, which every write had to update row by row, goes.
ALTER TABLE collections ADD COLUMN genres TEXT NOT NULL DEFAULT '{}';
DROP TABLE user_genres;

-- migration 6: each user's version and collection count in a narrow row
-- of their own. Every write to a user's collections moves them on, and
-- every request reads the version: in a table of their own they sit
-- some hundred to a page, not a dozen among names and password hashes,
-- and the users table no longer churns. The row carries its account's
-- UUID, so that a reader that knows the id can tell the account is the
-- one it means. A trigger makes the row of each new account, whatever
-- build registers it, at a random version below 2^62: answers cached for
-- an account that is gone, should its id be given again (a restored
-- backup, an identity restarted), are never taken for the new one's.
-- Rows of that id left by a deletion that skipped foreign keys (under
-- session_replication_role replica) are orphans: the collections go, the
-- version row is taken over.
CREATE TABLE user_versions (
    user_id     BIGINT  PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    uuid        TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    collections INTEGER NOT NULL
);
INSERT INTO user_versions (user_id, uuid, version, collections) SELECT id, uuid, version, collections FROM users;
ALTER TABLE users DROP COLUMN version, DROP COLUMN collections;
CREATE FUNCTION users_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM collections WHERE user_id = NEW.id;
    INSERT INTO user_versions (user_id, uuid, version, collections)
        VALUES (NEW.id, NEW.uuid, floor(random() * 4611686018427387904)::bigint, 0)
        ON CONFLICT (user_id) DO UPDATE SET uuid = excluded.uuid, version = excluded.version, collections = 0;
    RETURN NULL;
END $$;
CREATE TRIGGER users_version AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION users_version();
