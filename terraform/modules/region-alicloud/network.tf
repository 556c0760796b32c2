resource "alicloud_vpc" "this" {
  vpc_name          = local.name
  cidr_block        = var.vpc_cidr
  resource_group_id = alicloud_resource_manager_resource_group.this.id
  tags              = local.tags
}

resource "alicloud_vswitch" "nodes" {
  count        = length(local.zone_ids)
  vswitch_name = "${local.name}-nodes-${local.zone_ids[count.index]}"
  vpc_id       = alicloud_vpc.this.id
  zone_id      = local.zone_ids[count.index]
  cidr_block   = local.node_cidrs[count.index]
  tags         = local.tags
}

resource "alicloud_vswitch" "pods" {
  count        = length(local.zone_ids)
  vswitch_name = "${local.name}-pods-${local.zone_ids[count.index]}"
  vpc_id       = alicloud_vpc.this.id
  zone_id      = local.zone_ids[count.index]
  cidr_block   = local.pod_cidrs[count.index]
  tags         = local.tags
}

resource "alicloud_vswitch" "alb" {
  count        = length(local.zone_ids)
  vswitch_name = "${local.name}-alb-${local.zone_ids[count.index]}"
  vpc_id       = alicloud_vpc.this.id
  zone_id      = local.zone_ids[count.index]
  cidr_block   = local.alb_cidrs[count.index]
  tags         = local.tags
}

# Egress for nodes and pods (FX providers, payout rails, webhooks) through one NAT gateway.
resource "alicloud_nat_gateway" "this" {
  vpc_id           = alicloud_vpc.this.id
  nat_gateway_name = local.name
  nat_type         = "Enhanced"
  payment_type     = "PayAsYouGo"
  vswitch_id       = alicloud_vswitch.nodes[0].id
  tags             = local.tags
}

resource "alicloud_eip_address" "nat" {
  address_name         = "${local.name}-nat"
  isp                  = "BGP"
  internet_charge_type = "PayByTraffic"
  payment_type         = "PayAsYouGo"
  resource_group_id    = alicloud_resource_manager_resource_group.this.id
  tags                 = local.tags
}

resource "alicloud_eip_association" "nat" {
  allocation_id = alicloud_eip_address.nat.id
  instance_id   = alicloud_nat_gateway.this.id
  instance_type = "Nat"
}

resource "alicloud_snat_entry" "this" {
  for_each        = { for i, cidr in concat(local.node_cidrs, local.pod_cidrs) : tostring(i) => cidr }
  snat_table_id   = alicloud_nat_gateway.this.snat_table_ids
  source_cidr     = each.value
  snat_ip         = alicloud_eip_address.nat.ip_address
  snat_entry_name = "${local.name}-${each.key}"

  depends_on = [alicloud_eip_association.nat]
}

resource "alicloud_security_group" "nodes" {
  security_group_name = "${local.name}-nodes"
  description         = "ACK nodes of Corridor ${var.environment} ${var.region.code}"
  vpc_id              = alicloud_vpc.this.id
  resource_group_id   = alicloud_resource_manager_resource_group.this.id
  tags                = local.tags
}

resource "alicloud_security_group_rule" "nodes_from_vpc" {
  security_group_id = alicloud_security_group.nodes.id
  description       = "Traffic within the region's VPC (ALB to pods, pod to pod, nodes)"
  type              = "ingress"
  ip_protocol       = "all"
  port_range        = "-1/-1"
  cidr_ip           = var.vpc_cidr
  policy            = "accept"
  priority          = 1
}
