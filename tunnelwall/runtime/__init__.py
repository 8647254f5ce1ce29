"""Running testbeds: bring a topology and its censor up and down
(``network``, ``censor``), keep daemons alive (``supervisor``), remove what
a run left behind (``cleanup``), and talk to a running censor (``api``)."""
