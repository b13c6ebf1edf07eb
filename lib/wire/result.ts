/**
 * Decoders never throw: they return a DecodeResult. A failure names the byte offset
 * where decoding stopped and a short reason, so a malformed packet can be counted,
 * logged and dropped by the caller.
 */
export interface DecodeError {
  /** Byte offset (from the start of the buffer handed to the decoder) where the problem is. */
  offset: number;
  reason: string;
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: DecodeError };

export function ok<T>(value: T): DecodeResult<T> {
  return { ok: true, value };
}

export function fail<T = never>(offset: number, reason: string): DecodeResult<T> {
  return { ok: false, error: { offset, reason } };
}

/** Thrown only inside this package by ByteReader; converted to a DecodeError by `guardDecode`. */
export class WireDecodeFailure extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`${reason} at offset ${offset}`);
  }
}

/**
 * Runs a decoder body that reads through ByteReader (which signals short input with
 * WireDecodeFailure) and turns every failure, even an unexpected one, into a DecodeError.
 */
export function guardDecode<T>(body: () => DecodeResult<T>): DecodeResult<T> {
  try {
    return body();
  } catch (e) {
    if (e instanceof WireDecodeFailure) return fail(e.offset, e.reason);
    return fail(0, `internal decoder error: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Unwraps a DecodeResult where failure is a programming error (tests, encoders). */
export function expectOk<T>(result: DecodeResult<T>): T {
  if (!result.ok) throw new Error(`decode failed at offset ${result.error.offset}: ${result.error.reason}`);
  return result.value;
}
