export const MAX_LINES: number;
export function importsOf(text: string, fileName?: string): string[];
export interface StructureReport {
  oversized: Array<{ file: string; lines: number }>;
  /** Each strongly connected group of src/ files: its members, and one shortest cycle through the first. */
  cycles: Array<{ members: string[]; example: string[] }>;
  files: number;
}
export function checkStructure(root: string): StructureReport;
