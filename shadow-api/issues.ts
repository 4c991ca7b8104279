import type { z } from 'zod';

export interface IssueSummary {
  path: string;
  message: string;
}

/** zod issues as `path: message` pairs an operator can read in a 400 body or a log line. */
export function summarizeIssues(error: z.ZodError): IssueSummary[] {
  return error.issues.map((issue) => ({
    path: issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.'),
    message: issue.message,
  }));
}

export function describeIssues(issues: IssueSummary[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
}
