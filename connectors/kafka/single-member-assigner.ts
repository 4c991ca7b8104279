import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

/**
 * Gives every partition of the subscription to one member of the group (the lowest member
 * id) and nothing to the others. Reassembling Debezium transactions needs every table topic
 * and the transaction topic in one process, so extra members are hot standbys that take over
 * on the next rebalance when the active one leaves.
 */
export const singleMemberAssigner: PartitionAssigner = ({ cluster }) => ({
  name: 'SingleMemberAssigner',
  version: 0,
  async assign({ members, topics }) {
    const sorted = [...members].sort((a, b) => a.memberId.localeCompare(b.memberId));
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
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    };
  },
});
