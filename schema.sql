-- SQLite schema, as numbered migrations. A database records the last one
-- applied in schema_migrations; opening it applies the rest, in order, in one
-- transaction. Never edit a migration that has shipped: add the next one.
-- schema_postgres.sql holds the same migrations in PostgreSQL's dialect.

-- migration 1: accounts, settings, request counter
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
-- Usernames are ASCII, so lower() folds case the same way on every backend.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE request_counter (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO request_counter (id, value) VALUES (1, 0);

-- migration 2: collections, their movies, and each user's genre tally
CREATE TABLE collections (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT    NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX collections_user ON collections (user_id, id);

-- Each entry is the user's own copy of the movie as they sent it.
CREATE TABLE collection_movies (
    collection_id INTEGER NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    movie_uuid    TEXT    NOT NULL,
    title         TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    genres        TEXT    NOT NULL,
    PRIMARY KEY (collection_id, position),
    UNIQUE (collection_id, movie_uuid)
);

-- How many movie entries of the user's collections carry each genre, kept
-- up to date by every collection write so that reading the favourites
-- never scans the movies.
CREATE TABLE user_genres (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    genre   TEXT    NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (user_id, genre)
);

-- migration 3: account identifiers that are never reused, a per-user
-- version and collection count, login lockouts, top genres by index
-- uuid names an account in its tokens. Existing accounts get a random one
-- (version 4 form); their old tokens, which named a row number, stop working.
ALTER TABLE users ADD COLUMN uuid TEXT;
UPDATE users SET uuid = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
    substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random()) % 4, 1) ||
    substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));
CREATE UNIQUE INDEX users_uuid_key ON users (uuid);
-- version moves with every write to the user's collections, in the same
-- transaction: cached reads of that user are valid while it stands still.
ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
-- collections is how many the user has, for the per-user limit.
ALTER TABLE users ADD COLUMN collections INTEGER NOT NULL DEFAULT 0;
UPDATE users SET collections = (SELECT count(*) FROM collections c WHERE c.user_id = users.id);

-- Failed logins by lower-cased username, shared by every process. Times
-- are Unix seconds.
CREATE TABLE login_failures (
    username     TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER NOT NULL
);

-- Each running process's share of the request count: the total it had
-- persisted so far. A flush sends its new total; the difference is added
-- to the count in the same transaction, so a flush sent twice (a COMMIT
-- whose answer was lost, then retried) adds nothing the second time.
CREATE TABLE counter_shares (
    process TEXT    PRIMARY KEY,
    total   INTEGER NOT NULL
);

-- The favourite genres are the top three of this index: reading them
-- never scans all of a user's genres.
CREATE INDEX user_genres_top ON user_genres (user_id, n DESC, genre);

-- migration 4: a collection's movies in its own row; genre counts by key
-- A collection's movies are one JSON list in its row, in the order the
-- user gave them: a write stores one row however many movies it holds.
ALTER TABLE collections ADD COLUMN movies TEXT NOT NULL DEFAULT '[]';
UPDATE collections SET movies = (
    SELECT json_group_array(json_object('title', m.title, 'description', m.description,
        'genres', m.genres, 'uuid', m.movie_uuid) ORDER BY m.position)
    FROM collection_movies m WHERE m.collection_id = collections.id)
WHERE id IN (SELECT collection_id FROM collection_movies);
DROP TABLE collection_movies;

-- The genre counts keyed by (user_id, genre) itself, with no row number
-- beside it: a count written is one b-tree entry fewer.
CREATE TABLE user_genres_by_key (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    genre   TEXT    NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (user_id, genre)
) WITHOUT ROWID;
INSERT INTO user_genres_by_key (user_id, genre, n) SELECT user_id, genre, n FROM user_genres;
DROP TABLE user_genres;
ALTER TABLE user_genres_by_key RENAME TO user_genres;
CREATE INDEX user_genres_top ON user_genres (user_id, n DESC, genre);

-- migration 5: each collection counts its own genres; no per-user tally
-- genres is the collection's genre counts, a JSON object of how many of
-- its movies carry each genre, filled in for existing rows by the step
-- this build runs after this migration (countCollectionGenres). It comes
-- before movies in the row: reading it never walks a long movie list's
-- overflow pages. The favourite genres are summed from these counts when
-- a list is read, so a write stores one row however many genres it has,
-- and the per-user tally, which every write had to update row by row,
-- goes.
CREATE TABLE collections_v5 (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT    NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    genres      TEXT    NOT NULL DEFAULT '{}',
    movies      TEXT    NOT NULL DEFAULT '[]'
);
INSERT INTO collections_v5 (id, uuid, user_id, title, description, created_at, movies)
    SELECT id, uuid, user_id, title, description, created_at, movies FROM collections;
DROP TABLE collections;
ALTER TABLE collections_v5 RENAME TO collections;
CREATE INDEX collections_user ON collections (user_id, id);
DROP TABLE user_genres;

-- migration 6: each user's version and collection count in a narrow row
-- of their own. Every write to a user's collections moves them on, and
-- every request reads the version: in a table of their own they sit
-- some hundred to a page, not a dozen among names and password hashes.
-- The row carries its account's UUID, so that a reader that knows the
-- id can tell the account is the one it means. A trigger makes the row
-- of each new account, whatever build registers it, at a random version
-- below 2^62: answers cached for an account that is gone, whose id the
-- new one may be given (SQLite gives a deleted last row's id again), are
-- never taken for the new one's. Rows of that id left by a deletion made
-- with foreign keys off (the sqlite3 shell's default) are orphans: the
-- collections go, the version row is taken over.
CREATE TABLE user_versions (
    user_id     INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    uuid        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    collections INTEGER NOT NULL
);
INSERT INTO user_versions (user_id, uuid, version, collections) SELECT id, uuid, version, collections FROM users;
ALTER TABLE users DROP COLUMN version;
ALTER TABLE users DROP COLUMN collections;
CREATE TRIGGER users_version AFTER INSERT ON users BEGIN
    DELETE FROM collections WHERE user_id = NEW.id;
    INSERT INTO user_versions (user_id, uuid, version, collections)
        VALUES (NEW.id, NEW.uuid, abs(random() % 4611686018427387904), 0)
        ON CONFLICT (user_id) DO UPDATE SET uuid = excluded.uuid, version = excluded.version, collections = 0;
END;
