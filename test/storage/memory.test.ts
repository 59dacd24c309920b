import { createMemoryProvider } from "../../src/storage/drivers/memory.js";
import { storageConformance } from "./conformance.js";

storageConformance("memory", async () => ({ provider: createMemoryProvider(), cleanup: async () => {} })).run();
