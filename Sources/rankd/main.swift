print("rankd: not yet")
