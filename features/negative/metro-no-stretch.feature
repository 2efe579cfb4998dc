@negative @metro
Feature: Negative control: Metro-DR without stretch mode does not survive a partition between the data sites
  On a deliberate misconfiguration (environments/lab-metro-no-stretch.yaml: one replica per data site, size
  2, min_size 1, no tiebreaker) sites a and b are partitioned while the arbiter sees both: site a writes on
  alone, and a failover to b finds its placement groups waiting for site a's OSD, which holds writes b
  never saw. The failover must fail, naming that. Expected to FAIL; skipped, with the reason, in stretch
  mode (`dr-drill run --env environments/lab-metro-no-stretch.yaml features/negative/metro-no-stretch.feature`).

  Scenario: Without stretch mode, a failover to b during a partition between the data sites cannot serve
    Given a Metro-DR environment without stretch mode with sites a and b
    And a VM writing 100 records per second on site a
    When the VM has written 300 records
    And the VM's writes so far are replicated to site b
    And sites a and b are partitioned
    And the VM runs for 20s
    And the VM is failed over to site b
    Then no acknowledged write is lost
