import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

/**
 * Gives every partition of the subscription to one member of the group and nothing to the
 * others. Reassembling Debezium transactions needs every table topic and the transaction topic
 * in one process, so extra members are hot standbys that take over on the next rebalance when
 * the active one leaves. The active one is the member that has run longest (its consumer's
 * start time travels in the group metadata; then the lowest member id): a crash-looping
 * process rejoins as the newest member and leaves the work to a standby that stays up, and a
 * standby joining never takes the work from a healthy active member.
 */
export const singleMemberAssigner =
  (startedAtMs: number): PartitionAssigner =>
  ({ cluster }) => ({
    name: 'SingleMemberAssigner',
    version: 0,
    async assign({ members, topics }) {
      const sorted = [...members]
        .map((m) => ({ ...m, startedAt: startedAtOf(m.memberMetadata) }))
        .sort((a, b) => a.startedAt - b.startedAt || a.memberId.localeCompare(b.memberId));
      const active = sorted[0];
      const assignment: Record<string, number[]> = {};
      for (const topic of topics) {
        assignment[topic] = cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId);
      }
      return sorted.map((member) => ({
        memberId: member.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 0,
          assignment: member === active ? assignment : {},
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: 'SingleMemberAssigner',
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 0,
          topics,
          userData: Buffer.from(String(startedAtMs)),
        }),
      };
    },
  });

/** A member's start time; one without (an older version) sorts last. */
function startedAtOf(metadata: Buffer): number {
  const text = AssignerProtocol.MemberMetadata.decode(metadata)?.userData.toString() ?? '';
  const n = Number(text);
  return text !== '' && Number.isFinite(n) ? n : Number.MAX_SAFE_INTEGER;
}
