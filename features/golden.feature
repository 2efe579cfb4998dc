@regional @golden
Feature: VM disks cloned from a golden image keep the golden image's data through relocate and failover
  VMs are usually cloned from a golden image (CDI clones a DataVolume from it): the disk is an RBD clone of a
  snapshot of the golden image, and every block the guest never wrote is read through that parent. On the
  other site the clone's parent must be there too, or those blocks read back empty (Ceph tracker 61891, and
  the readiness rule DR020). The golden image here holds a known pattern right after the guest's disk, where
  no guest write can reach; it is written, read back and mirrored (its snapshot complete on the peer, and
  read back there) before the VM's disk is cloned from it. Each verdict reads those blocks back on the
  site that serves the VM, beside the usual record verdicts.

  The power loss lands right after a round completed on the survivor ("the VM's writes so far are
  replicated"), as in every default failover: one while rbd-mirror is copying a round meets a defect of
  Ceph 16.2.15's forced promote (features/rollback.feature, @known-defect). Here it also waits out the
  first rounds in the new direction after the relocate, which were seen slow (a round not complete 10.2 s
  after it started, 1 run of 8 in the flake campaign: the failover then failed for lag, a true verdict).

  Scenario: A VM cloned from a golden image is relocated, then failed over: the golden blocks survive
    Given a Regional-DR lab with sites a and b
    And a VM cloned from a golden image writing 50 records per second on site a
    When the VM runs for 3 replication intervals
    And the VM is relocated to site b
    Then no acknowledged write is lost
    And the golden image's data is intact
    When the VM runs for 2 replication intervals
    And the VM's writes so far are replicated to site a
    And site b loses power
    And the VM is failed over to site a
    Then the data loss window is at most the replication interval
    And the golden image's data is intact
