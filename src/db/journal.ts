import * as Either from "effect/Either"
import { decodeOrProblem } from "../decode.js"
import { DatabaseError } from "../errors.js"
import type { Plan } from "../model/plan-schema.js"
import { type Db, RESTORE_HINT } from "./connection.js"

// The apply journal: one row while an apply is in flight.

export type JournalState = "staging" | "committing"

export interface Journal {
  readonly state: JournalState
  readonly command: string
  readonly plan: Plan
  /** the desired document recorded with the new generation */
  readonly desired: string
  readonly startedAt: string
  readonly pid: number
  /** directories staging created, removed again on undo */
  readonly dirs: ReadonlyArray<string>
}

/**
 * File operations per journal_files row: enough that rows are few, few
 * enough that a row's JSON (~100 KB) is an ordinary young string that dies
 * at once, not a large object that waits for a full collection.
 */
export const JOURNAL_CHUNK = 256

export const beginJournal = (db: Db, j: Omit<Journal, "state">): void =>
  db.transaction(() => {
    db.prepare("INSERT INTO journal (id, state, command, plan, desired, started_at, pid) VALUES (1, 'staging', ?, ?, ?, ?, ?)").run(
      j.command,
      JSON.stringify({ ...j.plan, files: [] }),
      j.desired,
      j.startedAt,
      j.pid,
    )
    const chunk = db.prepare("INSERT INTO journal_files (seq, ops) VALUES (?, ?)")
    for (let i = 0; i < j.plan.files.length; i += JOURNAL_CHUNK) chunk.run(i / JOURNAL_CHUNK, JSON.stringify(j.plan.files.slice(i, i + JOURNAL_CHUNK)))
    const dir = db.prepare("INSERT INTO journal_dirs (path) VALUES (?)")
    for (const d of j.dirs) dir.run(d)
  })()

export const markCommitting = (db: Db): void => {
  // This row decides whether recovery finishes or undoes the apply: make it durable.
  db.pragma("synchronous = FULL")
  db.prepare("UPDATE journal SET state = 'committing' WHERE id = 1").run()
  db.pragma("synchronous = NORMAL")
}

/** Deletes the journal; call inside the transaction that settles the apply. */
export const clearJournal = (db: Db): void => {
  db.prepare("DELETE FROM journal").run()
  db.prepare("DELETE FROM journal_files").run()
  db.prepare("DELETE FROM journal_dirs").run()
}

/** The journal's plan as JSON values: its row's, with the chunks' file operations after its own; undefined when some part is not JSON. */
const journalPlan = (db: Db, text: string): unknown => {
  try {
    const plan: unknown = JSON.parse(text)
    const files = typeof plan === "object" && plan !== null ? (plan as { files?: unknown }).files : undefined
    for (const chunk of db.prepare("SELECT ops FROM journal_files ORDER BY seq").pluck().iterate() as IterableIterator<string>) {
      const ops: unknown = JSON.parse(chunk)
      // the decode of the plan says what is wrong
      if (!Array.isArray(files) || !Array.isArray(ops)) return { ...(plan as object), files: ops }
      for (const op of ops) files.push(op)
    }
    return plan
  } catch (e) {
    if (e instanceof SyntaxError) return undefined
    throw e
  }
}

export const readJournal = async (db: Db, dbPath: string): Promise<Journal | undefined> => {
  const row = db.prepare("SELECT state, command, plan, desired, started_at, pid FROM journal WHERE id = 1").get() as
    | { state: JournalState; command: string; plan: string; desired: string; started_at: string; pid: number }
    | undefined
  if (!row) return undefined
  // The plan's Schema loads only for a journal to read: every command looks for one, and almost never finds it.
  const { Plan } = await import("../model/plan-schema.js")
  const value = journalPlan(db, row.plan)
  const plan = value === undefined ? Either.left("its plan is not JSON") : decodeOrProblem(Plan, value)
  if (Either.isLeft(plan)) throw new DatabaseError({ path: dbPath, reason: `apply journal is unreadable: ${plan.left}; ${RESTORE_HINT}` })
  const dirs = (db.prepare("SELECT path FROM journal_dirs ORDER BY path").pluck().all() as string[]) ?? []
  return { state: row.state, command: row.command, plan: plan.right, desired: row.desired, startedAt: row.started_at, pid: row.pid, dirs }
}
