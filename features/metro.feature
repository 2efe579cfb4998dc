@metro
Feature: Metro-DR: synchronous replication over a stretched cluster loses nothing
  One Ceph cluster spans both sites (a replica in each) and an arbiter. A site lost: its clients are fenced
  (blocklisted, as ODF does) and the VM restarts on the other site against the same image, losing nothing.
  Skipped, with the reason, on a Regional-DR environment: `dr-drill run --env environments/lab-metro.yaml`.

  Scenario: Metro-DR failover after a power loss loses nothing
    Given a Metro-DR environment with sites a and b
    And the round-trip time between sites a and b is at most 10ms
    And a VM writing 100 records per second on site a
    When the VM has written 600 records
    And the VM's writes so far are replicated to site b
    And site a loses power
    And the VM is failed over to site b
    Then no acknowledged write is lost

  Scenario: Relocate on Metro-DR loses nothing
    Given a Metro-DR environment with sites a and b
    And a VM writing 50 records per second on site a
    When the VM has written 200 records
    And the VM is relocated to site b
    Then no acknowledged write is lost
    And the STOP record of the graceful shutdown survives

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

  Scenario: Isolating the arbiter alone changes nothing for the VM
    Given a Metro-DR environment with sites a and b
    And a VM writing 100 records per second on site a
    When the VM has written 200 records
    And site c is cut off from the other site
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
