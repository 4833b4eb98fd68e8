import Node
print(GridLedgerVersion.string)
