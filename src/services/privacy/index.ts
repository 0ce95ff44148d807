export { createPrivacyGuard, type PrivacyGuard, type PrivacyGuardOptions } from './guard.js';
export { normalizeKey } from './key-rules.js';
export type { CustomDetector, DetectorName } from './value-detectors.js';

import { createPrivacyGuard } from './guard.js';

/** The guard with the built-in rules: a copy of data fit for anonymous sharing. */
export const privacyGuard = createPrivacyGuard();
