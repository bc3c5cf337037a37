/**
 * IMAP folder names as servers compare them: INBOX in any case is the one inbox (RFC 3501 §5.1),
 * every other name exactly as written.
 */
export function folderKey(name: string): string {
  return name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
}

/** The folder a `move:<folder>` post-processing action moves mail into; null for other actions. */
export function moveTarget(postProcess: string): string | null {
  return postProcess.startsWith('move:') ? postProcess.slice('move:'.length) : null;
}

/**
 * Whether the action moves mail into one of the watched folders: the moved mail would be read
 * there again, stored as a copy and moved again, without end.
 */
export function movesIntoWatched(postProcess: string, watched: readonly string[]): boolean {
  const target = moveTarget(postProcess);
  return target !== null && watched.some((folder) => folderKey(folder) === folderKey(target));
}
