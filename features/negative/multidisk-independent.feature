@negative @regional
Feature: Negative control: the disks of a VM snapshotted each on its own are far apart after a failover
  Without the harness taking a VM's snapshots in the same round, each disk's rounds fall half an interval
  after the other disk's (2 disks): after the failover the disks hold data from moments 2.5 s apart (one
  snapshot per round each, so little jitter), over the drill's 2 s, and the skew verdict must say so, naming the disks and how far apart they are. (Two disks, not
  three: with a round every third of an interval rbd-mirror on the lab never rests, a round took 9.5 s
  against the declared 4 s and the failover failed for that lag before the skew could be judged.)
  Expected to FAIL.

  Scenario: A VM with 2 disks snapshotted each on its own, failed over after a power loss
    Given a Regional-DR lab with sites a and b
    And a VM with 2 disks writing 20 records per second on site a, each disk snapshotted on its own
    When the VM runs for 3 replication intervals
    And the VM's writes so far are replicated to site b
    And site a loses power
    And the VM is failed over to site b
    Then the VM's disks are at most 2s apart after the failover
