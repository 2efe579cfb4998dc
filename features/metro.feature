@metro
Feature: Metro-DR: synchronous replication over a stretched cluster loses nothing
  One Ceph cluster spans both sites and an arbiter, in Ceph's stretch mode (2 replicas per data site, the
  arbiter's monitor the tiebreaker). A site lost: its clients are fenced (blocklisted, as ODF does), the
  cluster goes on with the other site (degraded stretch mode) and the VM restarts there against the same
  image, losing nothing; the site back, the cluster heals itself to healthy stretch mode.
  Skipped, with the reason, on a Regional-DR environment: `dr-drill run --env environments/lab-metro.yaml`.
  The tag smoke marks the quick subset that proves the main promises on real Ceph (what `cargo test` runs,
  about 10 minutes here); the others are release qualification (`cargo test --test lab -- --ignored`).

  @smoke
  Scenario: Metro-DR failover after a power loss loses nothing
    Given a Metro-DR environment with sites a and b
    And the round-trip time between sites a and b is at most 10ms
    And a VM writing 100 records per second on site a
    When the VM has written 600 records
    And the VM's writes so far are replicated to site b
    And site a loses power
    And the VM is failed over to site b
    Then no acknowledged write is lost

  @smoke
  Scenario: Metro-DR with the sites 2 ms apart: in spec, and writes pay for the distance
    Given a Metro-DR environment with sites a and b
    And sites a and b are 2ms apart
    And the round-trip time between sites a and b is at most 10ms
    And a VM writing 100 records per second on site a
    When the VM has written 300 records
    And the VM is relocated to site b
    Then no acknowledged write is lost

  Scenario: Metro-DR with the sites 5 ms apart: writes pay for the distance
    # 5 ms one way measures 10.6 ms round trip here (the delay line's own ~0.5 ms on top): on the edge of
    # the 10 ms limit, so this scenario does not assert it; the 12 ms negative control shows the check.
    Given a Metro-DR environment with sites a and b
    And sites a and b are 5ms apart
    And a VM writing 100 records per second on site a
    When the VM has written 300 records
    And the VM is relocated to site b
    Then no acknowledged write is lost

  Scenario: The arbiter lost: nothing changes for the VM
    # the data sites keep a monitor quorum without the tiebreaker (4 of 5 in stretch mode)
    Given a Metro-DR environment with sites a and b
    And a VM writing 100 records per second on site a
    When the VM has written 200 records
    And site c loses power
    And the VM has written 1500 records
    And the VM is relocated to site b
    Then no acknowledged write is lost

  Scenario: Freeze then failover: the old VM comes back fenced, split brain refused
    Given a Metro-DR environment with sites a and b
    And a VM writing 100 records per second on site a
    When the VM has written 300 records
    And the VM's writes so far are replicated to site b
    And site a freezes
    And the VM is failed over to site b
    And site a thaws
    And site a is reconnected
    And the VM runs for 15s
    Then no acknowledged write is lost
    And every write the old VM attempts after the fence fails

  Scenario: Failover with the storage fence alone: the old VM's writes are refused
    # the site is never cut off by the harness: only the storage's fence (the blocklist) stands between the
    # thawed old VM and the disk; its writes must fail (an I/O error) or never complete
    Given a Metro-DR environment with sites a and b
    And a VM writing 100 records per second on site a
    When the VM has written 300 records
    And the VM's writes so far are replicated to site b
    And site a freezes
    And the VM is failed over to site b with the storage fence alone
    And site a thaws
    And the VM runs for 15s
    Then every write the old VM attempts after the fence fails

  Scenario: Site a partitioned from site b and the arbiter, then failover to b loses nothing
    Given a Metro-DR environment with sites a and b
    And a VM writing 100 records per second on site a
    When the VM has written 300 records
    And the VM's writes so far are replicated to site b
    And sites a and b are partitioned
    And sites a and c are partitioned
    And the VM runs for 20s
    And the VM is failed over to site b
    Then no acknowledged write is lost

  @smoke
  Scenario: Stretch mode: site a lost, degraded stretch mode, failover to b; site a back, healthy stretch mode again
    Given a Metro-DR environment with sites a and b
    And a VM writing 100 records per second on site a
    When the VM has written 300 records
    And site a loses power
    And the VM is failed over to site b
    Then no acknowledged write is lost
    And the cluster entered degraded stretch mode
    When site a comes back
    Then the cluster returns to healthy stretch mode within 5m

  Scenario: Sites a and b partitioned while the arbiter sees both, then healed: nothing lost
    # The tiebreaker keeps one data site (which one is not predictable: the run reports it, with every
    # monitor election and the VM's longest stall). Kept, site a writes on after a stall; lost, the VM
    # waits for the heal. Either way no acknowledged write may be lost, and the cluster heals itself.
    Given a Metro-DR environment with sites a and b
    And a VM writing 50 records per second on site a
    When the VM has written 200 records
    And sites a and b are partitioned
    And the VM runs for 45s
    And the partition between sites a and b heals
    And the VM runs for 15s
    And the VM is relocated to site b
    Then no acknowledged write is lost
    And the cluster returns to healthy stretch mode within 5m

  @smoke
  Scenario: A storage host of site a lost: the site serves on, nothing lost
    # 3 of 4 replicas left, min_size 2 still met: no degraded stretch mode, no failover
    Given a Metro-DR environment with sites a and b
    And a VM writing 100 records per second on site a
    When the VM has written 200 records
    And a storage host of site a loses power
    And the VM has written 2200 records
    And the VM is relocated to site b
    Then no acknowledged write is lost

  # Known defect of Ceph 16.2.15, tagged out of the default run (see the README for its measured rate):
  # after a partition between the data sites the monitors can fall into an election loop (tracker 66471,
  # fixed upstream by PR 57906) and no site writes while it lasts. Run it with --tags @known-defect.
  @known-defect
  Scenario: Sites a and b partitioned while the arbiter sees both: the VM writes again within 60 s
    Given a Metro-DR environment with sites a and b
    And a VM writing 50 records per second on site a
    When the VM has written 200 records
    And sites a and b are partitioned
    And the VM runs for 75s
    And the partition between sites a and b heals
    And the VM runs for 15s
    And the VM is relocated to site b
    Then no acknowledged write is lost
    And the VM writes again within 60s of the partition
    And the cluster returns to healthy stretch mode within 5m
