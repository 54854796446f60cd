// Versioned schema. Each entry moves the database from version i to i+1; the
// version lives in PRAGMA user_version so it changes in the same transaction.
export const migrations: ReadonlyArray<string> = [
  `
  CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );

  CREATE TABLE sources (
    name      TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,            -- 'dir'
    location  TEXT NOT NULL,
    added_at  TEXT NOT NULL,
    synced_at TEXT
  );

  -- Every trove conary has ever seen, keyed by the digest of its manifest, so a
  -- generation can name exactly what it installed even after a source drops it.
  CREATE TABLE troves (
    id          INTEGER PRIMARY KEY,
    digest      TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    scheme      TEXT NOT NULL,          -- version scheme: native | deb | rpm
    flavor      TEXT NOT NULL,
    format      TEXT NOT NULL,          -- archive format: native | deb
    components  TEXT NOT NULL,          -- JSON array of component names present
    file_count  INTEGER NOT NULL,
    total_size  INTEGER NOT NULL,
    scripts     TEXT                    -- JSON object of maintainer scripts, if any
  );
  CREATE INDEX troves_name ON troves(name);

  CREATE TABLE trove_files (
    trove_id    INTEGER NOT NULL REFERENCES troves(id) ON DELETE CASCADE,
    path        TEXT NOT NULL,
    kind        TEXT NOT NULL,          -- file | dir | symlink
    mode        INTEGER NOT NULL,       -- permission bits
    owner       TEXT NOT NULL,
    grp         TEXT NOT NULL,
    sha256      TEXT,                   -- regular files only
    size        INTEGER NOT NULL,
    link_target TEXT,
    is_config   INTEGER NOT NULL,
    component   TEXT NOT NULL,
    PRIMARY KEY (trove_id, path)
  ) WITHOUT ROWID;

  CREATE TABLE trove_deps (
    trove_id INTEGER NOT NULL REFERENCES troves(id) ON DELETE CASCADE,
    kind     TEXT NOT NULL,             -- requires | provides
    seq      INTEGER NOT NULL,
    value    TEXT NOT NULL,             -- a dependency expression, alternatives separated by ' | '
    PRIMARY KEY (trove_id, kind, seq)
  ) WITHOUT ROWID;

  -- Which source offers which trove, and where its archive is.
  CREATE TABLE available (
    source         TEXT NOT NULL REFERENCES sources(name) ON DELETE CASCADE,
    trove_id       INTEGER NOT NULL REFERENCES troves(id),
    archive        TEXT NOT NULL,
    archive_sha256 TEXT NOT NULL,
    archive_size   INTEGER NOT NULL,
    archive_mtime  INTEGER NOT NULL,
    PRIMARY KEY (source, archive)
  ) WITHOUT ROWID;
  CREATE INDEX available_trove ON available(trove_id);

  CREATE TABLE provenance (
    trove_id       INTEGER NOT NULL REFERENCES troves(id) ON DELETE CASCADE,
    source         TEXT NOT NULL,
    origin         TEXT NOT NULL,
    archive_sha256 TEXT NOT NULL,
    signature_key  TEXT,
    imported_at    TEXT NOT NULL,
    PRIMARY KEY (trove_id, source, origin)
  ) WITHOUT ROWID;

  CREATE TABLE desired (
    name      TEXT NOT NULL,
    component TEXT NOT NULL DEFAULT '', -- '' means the package's default components
    version   TEXT NOT NULL DEFAULT '', -- '' means the newest
    flavor    TEXT NOT NULL DEFAULT '', -- '' means no constraint
    added_at  TEXT NOT NULL,
    PRIMARY KEY (name, component, version, flavor)
  ) WITHOUT ROWID;

  CREATE TABLE system_provides (
    name TEXT PRIMARY KEY
  ) WITHOUT ROWID;

  CREATE TABLE system_flavor (
    flag  TEXT PRIMARY KEY,             -- 'ssl', 'is:x86_64', 'is:x86_64.sse2'
    sense TEXT NOT NULL                 -- required | preferred | prefernot | disallowed
  ) WITHOUT ROWID;

  CREATE TABLE generations (
    id         INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    command    TEXT NOT NULL,
    summary    TEXT NOT NULL            -- JSON counts
  );

  CREATE TABLE generation_troves (
    generation INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
    trove_id   INTEGER NOT NULL REFERENCES troves(id),
    components TEXT NOT NULL,
    reason     TEXT NOT NULL,
    PRIMARY KEY (generation, trove_id)
  ) WITHOUT ROWID;

  -- The changeset that produced a generation: one row per trove operation.
  CREATE TABLE changeset_ops (
    generation  INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    op          TEXT NOT NULL,          -- install | update | erase
    name        TEXT NOT NULL,
    old_version TEXT,
    new_version TEXT,
    old_flavor  TEXT,
    new_flavor  TEXT,
    files       INTEGER NOT NULL,
    PRIMARY KEY (generation, seq)
  ) WITHOUT ROWID;

  CREATE TABLE installed_troves (
    trove_id     INTEGER PRIMARY KEY REFERENCES troves(id),
    components   TEXT NOT NULL,
    reason       TEXT NOT NULL,         -- explicit | dependency
    generation   INTEGER NOT NULL,
    installed_at TEXT NOT NULL
  );

  -- Installed files with the stat cache taken right after apply wrote them.
  CREATE TABLE installed_files (
    trove_id    INTEGER NOT NULL REFERENCES installed_troves(trove_id) ON DELETE CASCADE,
    path        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    mode        INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    gid         INTEGER NOT NULL,
    sha256      TEXT,
    size        INTEGER NOT NULL,
    link_target TEXT,
    is_config   INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    ctime_ns    INTEGER NOT NULL,
    ino         INTEGER NOT NULL,
    PRIMARY KEY (trove_id, path)
  ) WITHOUT ROWID;
  CREATE INDEX installed_files_path ON installed_files(path);
  `,
  `
  -- An apply in progress: the plan it is carrying out and how far it got.
  -- staging: new contents are being staged beside their targets (undo on recovery);
  -- committing: staging is complete and durable (finish on recovery).
  CREATE TABLE journal (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    state      TEXT NOT NULL,
    command    TEXT NOT NULL,
    plan       TEXT NOT NULL,
    desired    TEXT NOT NULL,
    started_at TEXT NOT NULL,
    pid        INTEGER NOT NULL
  );
  -- Directories the apply creates while staging, removed again on undo.
  CREATE TABLE journal_dirs (
    path TEXT PRIMARY KEY
  ) WITHOUT ROWID;

  -- The desired state each generation was made from, restored by rollback.
  ALTER TABLE generations ADD COLUMN desired TEXT NOT NULL DEFAULT '{"formatVersion":1,"troves":[]}';
  `,
  `
  -- The ed25519 public key a repository's index must be signed with.
  ALTER TABLE sources ADD COLUMN trust_key TEXT;
  `,
  `
  -- What a file looked like in its archive beyond its content: its mtime
  -- (seconds; NULL when the archive did not say) and the file of the same
  -- trove it is a hard link to.
  ALTER TABLE trove_files ADD COLUMN mtime INTEGER;
  ALTER TABLE trove_files ADD COLUMN hardlink TEXT;
  `,
  `
  -- What the root had before a trove came (keyed by the path the trove named):
  -- a directory that existed (kind dir: kept as it is, never removed), or a file
  -- no trove owned, saved into the store and put back when its last owner goes.
  CREATE TABLE foreign_paths (
    path        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    sha256      TEXT,
    size        INTEGER NOT NULL,
    mode        INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    gid         INTEGER NOT NULL,
    link_target TEXT,
    generation  INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  -- Further base locations of a repository (a JSON array), tried in order after
  -- location; the one that served the index last accepted, and that index's
  -- validators (JSON: url, etag, lastModified) for a conditional re-sync.
  ALTER TABLE sources ADD COLUMN mirrors TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE sources ADD COLUMN synced_from TEXT;
  ALTER TABLE sources ADD COLUMN index_validator TEXT;
  `,
  `
  -- Files a trove owns but does not ship (rpm's %ghost): listed, never on disk.
  ALTER TABLE trove_files ADD COLUMN ghost INTEGER NOT NULL DEFAULT 0;
  `,
  `
  -- The licence a package declares (an SPDX expression, or its own words), for SBOMs.
  ALTER TABLE troves ADD COLUMN license TEXT;
  `,
  `
  -- Groups: troves of troves. Each member is a trove at an exact version and
  -- flavor (or another group), with the components it installs ('[]' = the
  -- defaults) and whether it comes by default or only when a row names it.
  CREATE TABLE group_members (
    group_id   INTEGER NOT NULL REFERENCES troves(id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    name       TEXT NOT NULL,
    version    TEXT NOT NULL,
    flavor     TEXT NOT NULL,
    components TEXT NOT NULL,
    by_default INTEGER NOT NULL,
    PRIMARY KEY (group_id, seq)
  ) WITHOUT ROWID;

  -- The group whose pin brought an installed trove in (reason 'group').
  ALTER TABLE installed_troves ADD COLUMN via_group TEXT;
  ALTER TABLE generation_troves ADD COLUMN via_group TEXT;

  -- A desired row may name an optional member of a group ('group-web/extras'):
  -- member joins the key.
  CREATE TABLE desired_v2 (
    name      TEXT NOT NULL,
    member    TEXT NOT NULL DEFAULT '', -- '' unless the row picks a group's optional member
    component TEXT NOT NULL DEFAULT '',
    version   TEXT NOT NULL DEFAULT '',
    flavor    TEXT NOT NULL DEFAULT '',
    added_at  TEXT NOT NULL,
    PRIMARY KEY (name, member, component, version, flavor)
  ) WITHOUT ROWID;
  INSERT INTO desired_v2 (name, component, version, flavor, added_at) SELECT name, component, version, flavor, added_at FROM desired;
  DROP TABLE desired;
  ALTER TABLE desired_v2 RENAME TO desired;
  `,
  `
  -- Repositories of format version 2 (README: Repositories). What the client
  -- trusts of each: the root (list of signing keys) it followed the chain to
  -- (0: none yet, only the key given with --trust), and the highest metadata
  -- version it accepted with its expiry (a lower one is a rollback). An
  -- insecure source was added with --insecure: no signature is required.
  ALTER TABLE sources ADD COLUMN insecure INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE sources ADD COLUMN root_version INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE sources ADD COLUMN root_keys TEXT;      -- {"keys": [...], "threshold": n}
  ALTER TABLE sources ADD COLUMN meta_version INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE sources ADD COLUMN meta_expires TEXT;
  -- A repository trove's file manifest (sha256 and size of the object) while
  -- trove_files does not hold its files yet: fetched when a plan needs it.
  ALTER TABLE troves ADD COLUMN manifest TEXT;
  ALTER TABLE troves ADD COLUMN manifest_size INTEGER;
  -- The metadata part (sha256) a repository listed the trove in: a re-sync
  -- reads only parts it does not know and drops the troves of parts gone.
  ALTER TABLE available ADD COLUMN part TEXT;
  -- What a repository says of such a trove's files that \`file:\` dependencies
  -- usually name (under /etc, in bin and sbin directories), until its manifest
  -- is fetched: resolving needs them before any manifest is.
  CREATE TABLE trove_paths (
    trove_id  INTEGER NOT NULL REFERENCES troves(id) ON DELETE CASCADE,
    path      TEXT NOT NULL,
    component TEXT NOT NULL,
    PRIMARY KEY (trove_id, path)
  ) WITHOUT ROWID;
  `,
  `
  -- Repositories of format version 3: a trove's metadata line (its sha256)
  -- in the state the repository last named; a re-sync applies a patch from
  -- the state these make up (README: Repositories). Lines of format version 2
  -- parts are not known: the next sync reads the parts.
  ALTER TABLE available RENAME COLUMN part TO entry;
  UPDATE available SET entry = NULL WHERE entry IS NOT NULL;
  `,
  `
  -- How a repository trove's contents can be fetched, from its manifest: the
  -- compressed size of each content's object, and deltas to a content from
  -- another one (an earlier version's), named by the sha256 of their bytes.
  -- gzip: how the result is compressed again ({"tool", "level", "fromSize",
  -- "toSize"}) when the delta is between gunzipped forms.
  CREATE TABLE content_packed (
    trove_id INTEGER NOT NULL REFERENCES troves(id) ON DELETE CASCADE,
    sha256   TEXT NOT NULL,
    size     INTEGER NOT NULL,
    PRIMARY KEY (trove_id, sha256)
  ) WITHOUT ROWID;
  CREATE TABLE content_deltas (
    trove_id    INTEGER NOT NULL REFERENCES troves(id) ON DELETE CASCADE,
    to_sha256   TEXT NOT NULL,
    from_sha256 TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    gzip        TEXT,
    PRIMARY KEY (trove_id, to_sha256, from_sha256)
  ) WITHOUT ROWID;
  CREATE INDEX content_deltas_to ON content_deltas(to_sha256);
  `,
  `
  -- An apply's file operations beside its journal row, in chunks (JSON arrays
  -- in order): a plan of 200,000 files is never one string in memory. The
  -- journal row's plan holds the rest (and, if written before, all of it).
  CREATE TABLE journal_files (
    seq INTEGER PRIMARY KEY,
    ops TEXT NOT NULL
  );
  `,
]

export const schemaVersion = migrations.length
