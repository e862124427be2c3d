// What the bridge says about itself: on `/`, the board, /readyz and in handle.status(). Its own room so that the
// composition (bridge.ts), the HTTP app and the board page share it without importing each other.

export interface BridgeStatus {
  mode: 'demo' | 'in-process' | 'remote';
  source: string;
  version: string;
  connected: boolean;
  /** The initial sync (connect snapshot + stored running/suspended tasks) has been applied. */
  synced: boolean;
  /** Why the bridge is not ready, when it is not. */
  reason?: string;
  openTasks: number;
  tracesExported: boolean;
  /** Several Mastra servers: each one's state (the bridge is ready while at least one is connected and synced). */
  sources?: { source: string; connected: boolean; synced: boolean; reason?: string }[];
}
