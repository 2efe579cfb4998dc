@negative @regional @scheduler-ceph
Feature: Negative control: Ceph's own schedule with replication stopped, whatever the host's time zone
  Ceph's mirror snapshot schedule (1 minute) replicates a snapshot taken while the VM writes (its first
  scheduled snapshot can come up to two minutes after the schedule is added: waited for, not slept), then
  replication to site b stops for longer than an interval. Snapshot times come from Ceph (the rbd CLI prints
  local time); read in the wrong zone they would excuse the loss. Run it with TZ set west or east of UTC.
  Runs only on an environment with `scheduler: ceph` (skipped elsewhere). Expected to FAIL.

  Scenario: Failover after replication stopped under Ceph's 1-minute schedule
    Given a Regional-DR lab with sites a and b
    And the replication interval is 1m
    And a VM writing 50 records per second on site a
    When the VM runs for 5s
    And the VM's writes so far are replicated to site b
    And replication to site b stops
    And the VM runs for 80s
    And site a loses power
    And the VM is failed over to site b
    Then the data loss window is at most the replication interval
