@wan @regional
Feature: The inter-site network: latency and loss
  The link between the sites is the harness's own delay line: every packet crosses it, held for its delay
  and dropped when told. Regional-DR replicates asynchronously, so a slow, lossy link costs replication
  time, not writes: the failover must still stay within the declared bound. A 100 ms round trip makes a
  5-second delta take 2.3-4.6 s to replicate here, so this runs against an environment that declares a
  5 s sync allowance: `dr-drill run --env environments/lab-regional-wan.yaml --tags @wan`. Left out of the
  default run (see the README on why).

  Scenario: Regional-DR failover across a 50 ms, lossy link stays within its bound
    Given a Regional-DR environment with sites a and b
    And sites a and b are 50ms apart
    And 1% of the packets between sites a and b are lost
    And the round-trip time between sites a and b is at most 150ms
    And a VM writing 50 records per second on site a
    When the VM runs for 15s
    And site a loses power
    And the VM is failed over to site b
    Then the data loss window is at most the replication interval
