@regional @scheduler-ceph @slow
Feature: Ceph's own mirror snapshot schedule carries a failover
  The drills elsewhere have the harness take a mirror snapshot every few seconds; here Ceph's own
  schedule (`rbd mirror snapshot schedule add`, 1 minute, the shortest it accepts) takes them. The VM
  writes across two scheduled snapshots (each waited for, not slept: Ceph's first may come up to two
  minutes after the schedule is added), writes on, its site loses power and it fails over; the loss window
  is judged against the declared 1-minute interval plus the allowance. Runs only on an environment with
  `scheduler: ceph` (skipped elsewhere, with the reason) and takes minutes (@slow, out of the default run):
  `dr-drill run --env environments/lab-regional-ceph-schedule.yaml --tags "@scheduler-ceph and not @negative"`.

  Scenario: Failover under Ceph's 1-minute schedule, after two scheduled snapshots
    Given a Regional-DR lab with sites a and b
    And the replication interval is 1m
    And a VM writing 20 records per second on site a
    When the VM runs for 5s
    And the VM's writes so far are replicated to site b
    And the VM's writes so far are replicated to site b
    And the VM runs for 20s
    And site a loses power
    And the VM is failed over to site b
    Then the data loss window is at most the replication interval
    And the VM serves again on site b within 2m
