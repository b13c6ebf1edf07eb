/**
 * RFC 5798 section 6.1 timer arithmetic (VRRPv3). Intervals are carried in
 * centiseconds on the wire; this module converts to milliseconds for the clock.
 */

/** Advertisement interval in centiseconds: 12 bits on the wire (RFC 5798 5.2.7). */
export const MAX_ADVER_INT_CS = 0xfff;
export const DEFAULT_ADVER_INT_CS = 100;
/** Priority of the IP address owner; 0 means "master is leaving" (RFC 5798 5.2.4). */
export const OWNER_PRIORITY = 255;
export const RESIGN_PRIORITY = 0;

/** Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256, in centiseconds. */
export function skewTimeCs(priority: number, masterAdverIntCs: number): number {
  return ((256 - priority) * masterAdverIntCs) / 256;
}

/** Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_Time, in centiseconds. */
export function masterDownIntervalCs(priority: number, masterAdverIntCs: number): number {
  return 3 * masterAdverIntCs + skewTimeCs(priority, masterAdverIntCs);
}

export function csToMs(cs: number): number {
  return cs * 10;
}

export function skewTimeMs(priority: number, masterAdverIntCs: number): number {
  return csToMs(skewTimeCs(priority, masterAdverIntCs));
}

export function masterDownIntervalMs(priority: number, masterAdverIntCs: number): number {
  return csToMs(masterDownIntervalCs(priority, masterAdverIntCs));
}
