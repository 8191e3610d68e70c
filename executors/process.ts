// Process identity and process groups, for the executor, the local launcher and the data-dir
// lock. Pids (and so process-group ids) are reused — pid_max is often 32768 — so "kill(pid, 0)
// succeeds" does not mean "the process we started is alive": where /proc exists, a process is
// identified by its pid AND its start time (field 22 of /proc/<pid>/stat), and a zombie (killed,
// not yet reaped by its parent) counts as dead.
import { readdirSync, readFileSync } from 'node:fs';

/** The fields of /proc/<pid>/stat we use, or undefined when there is no such process (or no /proc). */
function procStat(pid: number): { state: string; pgrp: number; startTime: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp session ... starttime(22)": comm may hold spaces and parentheses
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const pgrp = Number(fields[2]);
  const startTime = fields[19];
  if (state === undefined || startTime === undefined) return undefined;
  return { state, pgrp, startTime };
}

export function hasProc(): boolean {
  return procStat(process.pid) !== undefined;
}

/** The process's start time (clock ticks since boot) where /proc exists: with the pid, its identity. */
export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

/**
 * Whether process `pid` is alive and not a zombie; with `startTime`, also that it is the same
 * process (not a later one that got the same pid). Without /proc only kill(pid, 0) is available.
 */
export function processAlive(pid: number, startTime?: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!hasProc()) return true;
  const st = procStat(pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return startTime === undefined || st.startTime === startTime;
}

/** Whether process group `pgid` has a member that is not a zombie. */
export function groupAlive(pgid: number): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!hasProc()) return true;
  // kill(-pgid, 0) also succeeds while only zombies are left (killed, their parent not yet
  // reaping them): those are gone for our purpose
  const leader = procStat(pgid);
  if (leader && leader.pgrp === pgid && leader.state !== 'Z' && leader.state !== 'X') return true;
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return true;
  }
  for (const e of entries) {
    const st = procStat(Number(e));
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') return true;
  }
  return false;
}

/**
 * Whether `pgid` is still the process group of the step started as `leaderPid` at `startTime`.
 * A group id cannot be handed out again while any member of the group lives, so: the leader
 * alive with the recorded start time, or the leader gone and its group still populated.
 */
export function groupIsOurs(pgid: number, startTime: string | undefined): boolean {
  if (!groupAlive(pgid)) return false;
  if (startTime === undefined || !hasProc()) return true;
  const leader = procStat(pgid);
  if (!leader || leader.state === 'Z' || leader.state === 'X') return true; // leader gone, members left
  return leader.startTime === startTime;
}

/** Sends `signal` to every process of group `pgid`; false when there is none. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
