@failover @regional @blackhole
Feature: Failover with the old primary black-holed: the forced promote does not wait on it
  The common real failure: the primary site cut off (its link black-holed by the delay line: packets
  dropped, never refused, so TCP to it hangs rather than failing), still running, its VM still writing.
  The forced promote on the survivor must not wait on the unreachable peer longer than the promote budget.
  Measured here: promoted 3.3-3.4 s after the cut, serving 7.0 s (3 runs; 8.2 s in a fourth on a loaded
  machine), against 3.3-8.3 s after a power loss (the promote polls rbd-mirror's watch on the image every
  5 s: released at once or one poll later).
  The old site stays primary, marked stale while it is out: not a split brain until it comes back.

  The cut lands right after a round completed on the survivor ("the VM's writes so far are replicated"):
  one while rbd-mirror is copying a round meets a defect of Ceph 16.2.15's forced promote (the survivor
  rolled back below a snapshot it reported complete; features/rollback.feature, @known-defect, out of the
  default run; rate in features/failover.feature and the README).

  Scenario: Regional-DR failover with site a black-holed, still running: the forced promote within its budget
    Given a Regional-DR lab with sites a and b
    And a VM writing 50 records per second on site a
    When the VM runs for 3 replication intervals
    And the VM's writes so far are replicated to site b
    And site a is cut off from the other site
    And the VM is failed over to site b
    Then the data loss window is at most the replication interval
    And the VM serves again on site b within 2m
