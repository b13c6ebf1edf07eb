export * from "./address.ts";
export * from "./errors.ts";
export * from "./load.ts";
export * from "./schema.ts";
