import { InitialSchema1764000000001 } from './0001-initial-schema.js';
import { Inbound1764000000002 } from './0002-inbound.js';

/** Every migration, oldest first. A new one is a new file here plus one line below. */
export const MIGRATIONS = [InitialSchema1764000000001, Inbound1764000000002];
